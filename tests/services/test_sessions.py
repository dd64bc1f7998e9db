"""SessionHub in-process: tokens, limits, expiry, heartbeats, follower admission, mailboxes."""

import json
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from app.launch import running_redis
from app.services import sessions as sessions_module
from app.services.sessions import (
    CLIENT_SESSIONS,
    ENDED,
    SESSION_KEY,
    ClientLimitError,
    PresenterTokenError,
    SessionHub,
    SessionLimitError,
    SessionLimits,
    SessionNotFoundError,
    token_hash,
)

pytestmark = pytest.mark.anyio


def hub(max_sessions: int = 3, max_followers: int = 2, ttl: int = 600, **limits: int) -> SessionHub:
    return SessionHub(SessionLimits(max_sessions, max_followers, ttl, **limits))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sessions' wall clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(sessions_module.time, "time", lambda: now[0])
    return now


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
    follower = sessions.admit(created.session_id, "10.0.0.1")
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
    follower = sessions.admit(created.session_id, "10.0.0.1")
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
    followers = [sessions.admit(first.session_id, f"10.0.0.{n}") for n in range(2)]
    with pytest.raises(SessionLimitError, match="2 followers"):
        sessions.admit(first.session_id, "10.0.0.9")
    sessions.remove_follower(followers[0])
    sessions.remove_follower(followers[0])
    sessions.admit(first.session_id, "10.0.0.9")
    assert sessions.follower_count == 2


async def test_one_address_holds_at_most_its_share_of_sessions(clock: list[float]) -> None:
    sessions = hub(max_sessions=10, ttl=3600, sessions_per_client=4, idle_seconds=900)
    mine = [await sessions.create("10.0.0.1") for _ in range(4)]
    clock[0] += 100
    with pytest.raises(ClientLimitError, match="4 sessions") as refused:
        await sessions.create("10.0.0.1")
    # The earliest of the four expires 900 s after it was made, 100 s ago.
    assert refused.value.retry_after == 800
    assert (await sessions.create("10.0.0.2")).session_id
    await sessions.end(mine[0].session_id, mine[0].presenter_token)
    assert (await sessions.create("10.0.0.1")).session_id


async def test_a_session_without_a_presenter_heartbeat_expires(clock: list[float]) -> None:
    sessions = hub(max_sessions=1, ttl=6 * 3600, idle_seconds=900)
    created = await sessions.create("10.0.0.1")
    for _ in range(3):
        clock[0] += 899
        await sessions.heartbeat(created.session_id, created.presenter_token)
    clock[0] += 899
    await sessions.publish(created.session_id, created.presenter_token, {"x": 1})
    clock[0] += 899
    assert await sessions.current_view(created.session_id) == {"x": 1}
    clock[0] += 2
    with pytest.raises(SessionNotFoundError):
        await sessions.current_view(created.session_id)
    with pytest.raises(SessionNotFoundError):
        await sessions.heartbeat(created.session_id, created.presenter_token)
    assert (await sessions.create("10.0.0.1")).session_id != created.session_id


async def test_heartbeats_need_the_token_and_never_outlive_the_session_ttl(
    clock: list[float],
) -> None:
    sessions = hub(ttl=3600, idle_seconds=900)
    created = await sessions.create()
    with pytest.raises(PresenterTokenError):
        await sessions.heartbeat(created.session_id, "wrong")
    for _ in range(4):
        clock[0] += 800
        await sessions.heartbeat(created.session_id, created.presenter_token)
    clock[0] += 399
    assert await sessions.current_view(created.session_id) is None
    clock[0] += 1
    with pytest.raises(SessionNotFoundError):
        await sessions.current_view(created.session_id)


async def test_one_session_full_of_followers_leaves_room_for_another() -> None:
    sessions = hub(max_followers=10, followers_per_session=6, followers_per_client=4)
    crowded, other = await sessions.create(), await sessions.create()
    admitted = [sessions.admit(crowded.session_id, f"10.0.0.{n % 2}") for n in range(6)]
    with pytest.raises(SessionLimitError, match="6 followers of this session"):
        sessions.admit(crowded.session_id, "10.0.0.7")
    sessions.admit(other.session_id, "10.0.0.7")
    sessions.admit(other.session_id, "10.0.0.1")
    with pytest.raises(ClientLimitError, match="4 followers from your address"):
        sessions.admit(other.session_id, "10.0.0.1")
    sessions.remove_follower(admitted[1])
    sessions.admit(other.session_id, "10.0.0.1")
    sessions.admit(other.session_id, "10.0.0.8")
    sessions.admit(other.session_id, "10.0.0.9")
    assert sessions.follower_count == 10
    with pytest.raises(SessionLimitError, match="10 followers are connected"):
        sessions.admit(other.session_id, "10.0.0.10")


async def test_next_times_out_for_a_heartbeat() -> None:
    sessions = hub()
    follower = sessions.admit((await sessions.create()).session_id, "10.0.0.1")
    with anyio.fail_after(1.0):
        assert await follower.next(0.05) is None


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A throwaway redis-server of its own (scripts/install-test-deps.sh installs it)."""
    with running_redis() as url:
        client = Redis.from_url(url)
        yield client
        await client.aclose()


@pytest.mark.e2e
async def test_in_redis_one_address_holds_at_most_its_share(redis: Redis) -> None:
    sessions = SessionHub(
        SessionLimits(10, 10, 3600, idle_seconds=900, sessions_per_client=2), redis
    )
    mine = [await sessions.create("10.0.0.1") for _ in range(2)]
    with pytest.raises(ClientLimitError, match="2 sessions") as refused:
        await sessions.create("10.0.0.1")
    assert 899 <= refused.value.retry_after <= 900
    assert (await sessions.create("10.0.0.2")).session_id
    assert await redis.zcard(CLIENT_SESSIONS.format("10.0.0.1")) == 2
    await sessions.end(mine[0].session_id, mine[0].presenter_token)
    assert await redis.zcard(CLIENT_SESSIONS.format("10.0.0.1")) == 1
    assert (await sessions.create("10.0.0.1")).session_id
    with pytest.raises(SessionLimitError):
        await SessionHub(SessionLimits(3, 10, 3600), redis).create("10.0.0.3")


@pytest.mark.e2e
async def test_in_redis_a_session_lives_on_heartbeats_only(redis: Redis) -> None:
    sessions = SessionHub(SessionLimits(1, 10, 3600, idle_seconds=1), redis)
    created = await sessions.create("10.0.0.1")
    key = SESSION_KEY.format(created.session_id)
    assert 0 < await redis.pttl(key) <= 1000
    for _ in range(3):
        await anyio.sleep(0.6)
        await sessions.heartbeat(created.session_id, created.presenter_token)
    await sessions.publish(created.session_id, created.presenter_token, {"x": 1})
    assert await sessions.current_view(created.session_id) == {"x": 1}
    with pytest.raises(PresenterTokenError):
        await sessions.heartbeat(created.session_id, "wrong")
    await anyio.sleep(1.2)
    with pytest.raises(SessionNotFoundError):
        await sessions.heartbeat(created.session_id, created.presenter_token)
    assert await redis.exists(key) == 0
    assert (await sessions.create("10.0.0.1")).session_id != created.session_id
