"""SessionHub in-process: tokens, limits, expiry, and one-slot follower mailboxes."""

import json

import anyio
import pytest

from app.services import sessions as sessions_module
from app.services.sessions import (
    ENDED,
    PresenterTokenError,
    SessionHub,
    SessionLimitError,
    SessionLimits,
    SessionNotFoundError,
    token_hash,
)

pytestmark = pytest.mark.anyio


def hub(max_sessions: int = 3, max_followers: int = 2, ttl: int = 600) -> SessionHub:
    return SessionHub(SessionLimits(max_sessions, max_followers, ttl))


async def test_only_the_presenter_token_changes_the_view() -> None:
    sessions = hub()
    created = await sessions.create()
    assert await sessions.current_view(created.session_id) is None
    with pytest.raises(PresenterTokenError):
        await sessions.publish(created.session_id, created.presenter_token + "x", {"layer": "a"})
    await sessions.publish(created.session_id, created.presenter_token, {"layer": "conv1", "y": 3})
    assert await sessions.current_view(created.session_id) == {"layer": "conv1", "y": 3}
    with pytest.raises(SessionNotFoundError):
        await sessions.publish("A" * 16, created.presenter_token, {})


async def test_only_the_token_hash_is_kept() -> None:
    sessions = hub()
    created = await sessions.create()
    stored = sessions._local[created.session_id]
    assert stored.token_sha256 == token_hash(created.presenter_token)
    assert created.presenter_token not in json.dumps(vars(stored))
    assert len(created.session_id) == 16 and len(created.presenter_token) == 32


async def test_a_follower_gets_only_the_newest_view() -> None:
    sessions = hub()
    created = await sessions.create()
    follower = sessions.add_follower(created.session_id)
    for y in range(3):
        await sessions.publish(created.session_id, created.presenter_token, {"y": y})
    assert await follower.next(1.0) == '{"y":2}'
    assert await follower.next(0.01) is None
    other = await sessions.create()
    await sessions.publish(other.session_id, other.presenter_token, {"y": 9})
    assert await follower.next(0.01) is None


async def test_ending_a_session_tells_followers_and_forgets_it() -> None:
    sessions = hub()
    created = await sessions.create()
    follower = sessions.add_follower(created.session_id)
    with pytest.raises(PresenterTokenError):
        await sessions.end(created.session_id, "wrong")
    await sessions.end(created.session_id, created.presenter_token)
    assert await follower.next(1.0) == ENDED
    with pytest.raises(SessionNotFoundError):
        await sessions.current_view(created.session_id)


async def test_session_and_follower_limits() -> None:
    sessions = hub(max_sessions=2, max_followers=2)
    first, _ = await sessions.create(), await sessions.create()
    with pytest.raises(SessionLimitError, match="2 sessions"):
        await sessions.create()
    followers = [sessions.add_follower(first.session_id) for _ in range(2)]
    with pytest.raises(SessionLimitError, match="2 followers"):
        sessions.check_capacity()
    sessions.remove_follower(followers[0])
    sessions.check_capacity()
    assert sessions.follower_count == 1


async def test_expired_sessions_are_gone_and_free_their_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = hub(max_sessions=1, ttl=60)
    clock = [1000.0]
    monkeypatch.setattr(sessions_module.time, "time", lambda: clock[0])
    created = await sessions.create()
    clock[0] += 59
    await sessions.publish(created.session_id, created.presenter_token, {"x": 1})
    clock[0] += 59
    assert await sessions.current_view(created.session_id) == {"x": 1}
    clock[0] += 61
    with pytest.raises(SessionNotFoundError):
        await sessions.current_view(created.session_id)
    assert (await sessions.create()).session_id != created.session_id


async def test_next_times_out_for_a_heartbeat() -> None:
    sessions = hub()
    follower = sessions.add_follower((await sessions.create()).session_id)
    with anyio.fail_after(1.0):
        assert await follower.next(0.05) is None
