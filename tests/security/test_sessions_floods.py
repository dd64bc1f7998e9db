"""Presenter sessions under floods, in-process: hundreds of event streams opened and closed at once
straight through ASGI, a burst of session creations, and a foreign page driving a session.

Measured against a real server before the fix: 62 POSTs from one address took all 64 sessions;
500 streams on one session locked out followers of every other session; and after 100 of 500
streams closed, 150 simultaneous follows let 123 in (523 open against a cap of 500).
"""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.core.registry import ModelRegistry
from app.main import create_app
from app.services.sessions import SessionHub
from tests.security.rawasgi import RawResponse, ScriptedReceive, assert_error, call_asgi

pytestmark = pytest.mark.anyio

LONG_STREAM = {"sse_max_stream_seconds": 600.0, "sse_heartbeat_seconds": 300.0}


@asynccontextmanager
async def running(registry: ModelRegistry, **settings: Any) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(**LONG_STREAM, **settings), registry=registry)
    async with app.router.lifespan_context(app):
        yield app


def addresses(count: int, network: int = 1) -> Iterator[str]:
    """`count` distinct client addresses in 10.<network>.0.0/16."""
    for index in range(count):
        yield f"10.{network}.{index // 256}.{index % 256}"


@dataclass
class Follows:
    """Event streams opened straight through ASGI; each stays open until it is closed."""

    app: FastAPI
    session_id: str
    answers: dict[int, RawResponse] = field(default_factory=dict)
    leave: dict[int, anyio.Event] = field(default_factory=dict)

    @property
    def hub(self) -> SessionHub:
        return self.app.state.sessions

    async def follow(self, index: int, client: str) -> None:
        receive = ScriptedReceive(disconnect=self.leave.setdefault(index, anyio.Event()))
        url = f"/api/v1/sessions/{self.session_id}/events"
        self.answers[index] = await call_asgi(self.app, "GET", url, receive=receive, client=client)

    def refused(self) -> list[RawResponse]:
        return [answer for answer in self.answers.values() if answer.status_code != 200]

    def close(self, indexes: list[int]) -> None:
        for index in indexes:
            self.leave[index].set()


async def new_session(app: FastAPI, client: str = "10.200.0.1") -> str:
    response = await call_asgi(app, "POST", "/api/v1/sessions", client=client)
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


async def settle(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


async def test_150_simultaneous_follows_into_100_free_places_admit_exactly_100(
    registry: ModelRegistry,
) -> None:
    caps = {"followers_per_session": 500, "followers_per_client": 500}
    async with running(registry, max_session_followers=500, **caps) as app:
        follows = Follows(app, await new_session(app))
        clients = list(addresses(650))
        async with anyio.create_task_group() as group:
            for index in range(500):
                group.start_soon(follows.follow, index, clients[index])
            await settle(lambda: follows.hub.follower_count == 500)
            follows.close(list(range(100)))
            await settle(lambda: follows.hub.follower_count == 400 and len(follows.answers) == 100)
            for index in range(500, 650):
                group.start_soon(follows.follow, index, clients[index])
            await settle(lambda: len(follows.refused()) == 50)
            assert follows.hub.follower_count == 500
            follows.close(list(range(100, 650)))
        for answer in follows.refused():
            assert_error(answer, 503, "busy")
            assert answer.headers["retry-after"] == "2"
        assert follows.hub.follower_count == 0


async def test_500_followers_of_one_session_leave_room_for_another(
    registry: ModelRegistry,
) -> None:
    async with running(registry) as app:
        crowded, other = await new_session(app), await new_session(app)
        flood, student = Follows(app, crowded), Follows(app, other)
        async with anyio.create_task_group() as group:
            for index, client in enumerate(addresses(500)):
                group.start_soon(flood.follow, index, client)
            await settle(lambda: len(flood.refused()) == 300)
            assert flood.hub.follower_count == 200
            group.start_soon(student.follow, 0, "10.99.0.1")
            await settle(lambda: flood.hub.follower_count == 201)
            flood.close(list(range(500)))
            student.close([0])
        assert student.answers[0].status_code == 200
        message = assert_error(flood.refused()[0], 503, "busy")
        assert "200 followers of this session" in message


async def test_one_address_gets_at_most_its_share_of_followers(registry: ModelRegistry) -> None:
    async with running(registry) as app:
        follows = Follows(app, await new_session(app))
        async with anyio.create_task_group() as group:
            for index in range(150):
                group.start_soon(follows.follow, index, "10.1.0.1")
            await settle(lambda: len(follows.refused()) == 50)
            assert follows.hub.follower_count == 100
            follows.close(list(range(150)))
        message = assert_error(follows.refused()[0], 429, "too_many_followers")
        assert "100 followers from your address" in message


async def test_62_creations_from_one_address_leave_the_teacher_a_session(
    registry: ModelRegistry,
) -> None:
    async with running(registry) as app:
        answers: list[RawResponse] = []

        async def create() -> None:
            answers.append(await call_asgi(app, "POST", "/api/v1/sessions", client="10.1.0.1"))

        async with anyio.create_task_group() as group:
            for _ in range(62):
                group.start_soon(create)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * 4 + [429] * 58
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert "4 sessions" in assert_error(refused, 429, "too_many_sessions")
        assert 899 <= int(refused.headers["retry-after"]) <= 900
        teacher = await call_asgi(app, "POST", "/api/v1/sessions", client="10.2.0.1")
        assert teacher.status_code == 201


async def test_a_page_on_another_site_cannot_take_sessions(registry: ModelRegistry) -> None:
    async with running(registry) as app:
        evil = [("Origin", "http://evil.example"), ("Host", "testserver")]
        response = await call_asgi(app, "POST", "/api/v1/sessions", headers=evil)
        assert "http://evil.example" in assert_error(response, 403, "foreign_origin")
        assert app.state.sessions._local == {}
