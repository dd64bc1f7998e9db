"""Presenter sessions against a real `convlens serve`: follower caps over real sockets, a foreign
page's POST, and a forged Host on a redirect, exactly as an attacker on the network would send them.

Every request comes from 127.0.0.1, so one address holds at most `FOLLOWERS_PER_CLIENT` streams.
"""

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx
import pytest

from app.launch import ServerProcess, running_server_process
from tests.security.rawasgi import assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

FOLLOWERS_PER_SESSION = 12
FOLLOWERS_PER_CLIENT = 16


@pytest.fixture(scope="module")
def server(photo_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "CONVLENS_MODELS_DIR": str(photo_models_dir),
        "CONVLENS_DEVICE": "cpu",
        "CONVLENS_FOLLOWERS_PER_SESSION": str(FOLLOWERS_PER_SESSION),
        "CONVLENS_FOLLOWERS_PER_CLIENT": str(FOLLOWERS_PER_CLIENT),
    }
    with running_server_process(env=env) as process:
        yield process


async def test_follower_caps_hold_over_real_sockets(server: ServerProcess) -> None:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=10) as http:
        crowded = (await http.post("/api/v1/sessions")).json()["events_url"]
        other = (await http.post("/api/v1/sessions")).json()["events_url"]
        statuses: list[int] = []
        async with AsyncExitStack() as streams:

            async def follow(url: str) -> None:
                response = await streams.enter_async_context(http.stream("GET", url))
                statuses.append(response.status_code)
                if response.status_code != 200:
                    await response.aread()
                    assert_error(response, response.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(30):
                    group.start_soon(follow, crowded)
            assert sorted(statuses) == [200] * FOLLOWERS_PER_SESSION + [503] * 18
            statuses.clear()
            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(follow, other)
            open_now = FOLLOWERS_PER_SESSION + statuses.count(200)
            assert open_now == FOLLOWERS_PER_CLIENT
            assert sorted(statuses) == [200] * 4 + [429] * 4
        async with http.stream("GET", other) as again:
            assert again.status_code == 200


async def test_a_foreign_origin_and_a_forged_host_get_nothing(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        foreign = await http.post("/api/v1/sessions", headers={"Origin": "http://evil.example"})
        assert_error(foreign, 403, "foreign_origin")
        redirect = await http.get("/api/v1/models/", headers={"Host": "evil.example"})
        assert (redirect.status_code, redirect.headers["location"]) == (307, "/api/v1/models")
