"""Presenter sessions over HTTP: tokens, validation, limits, and the server-sent event stream."""

import json
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.services.sessions import SessionHub

pytestmark = pytest.mark.anyio

STREAM_SECONDS = 0.5
HEARTBEAT_SECONDS = 0.1


@pytest.fixture
def settings() -> Settings:
    return Settings(
        sse_max_stream_seconds=STREAM_SECONDS,
        sse_heartbeat_seconds=HEARTBEAT_SECONDS,
        max_sessions=2,
        max_session_followers=1,
    )


@pytest.fixture
def hub(app: FastAPI, client: httpx.AsyncClient) -> SessionHub:
    return app.state.sessions


@pytest.fixture
async def session(client: httpx.AsyncClient) -> AsyncIterator[dict]:
    response = await client.post("/api/v1/sessions")
    assert response.status_code == 201, response.text
    body = response.json()
    body["auth"] = {"Authorization": f"Bearer {body['presenter_token']}"}
    yield body


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


def parse_events(text: str) -> tuple[list[tuple[str, dict]], int, list[str]]:
    """(events as (name, data), heartbeat count, other lines) of an event-stream body."""
    events, heartbeats, other = [], 0, []
    for block in text.split("\n\n"):
        if not block:
            continue
        if block == ": keep-alive":
            heartbeats += 1
        elif block.startswith("event: "):
            name_line, data_line = block.split("\n")
            events.append((name_line.removeprefix("event: "), json.loads(data_line[6:])))
        else:
            other.append(block)
    return events, heartbeats, other


async def test_create_returns_the_token_once_and_the_urls(
    client: httpx.AsyncClient, session: dict
) -> None:
    sid = session["session_id"]
    assert session["events_url"] == f"/api/v1/sessions/{sid}/events"
    assert session["view_url"] == f"/api/v1/sessions/{sid}/view"
    assert session["follow_url"] == f"/?follow={sid}"
    state = (await client.get(f"/api/v1/sessions/{sid}")).json()
    assert state == {
        "session_id": sid,
        "view": None,
        "events_url": session["events_url"],
        "follow_url": session["follow_url"],
    }


async def test_changing_the_view_needs_the_presenter_token(
    client: httpx.AsyncClient, session: dict
) -> None:
    url, view = session["view_url"], {"layer": "conv1", "channel": 2}
    missing = await client.post(url, json=view)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "presenter_token_required"
    wrong = await client.post(url, json=view, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_presenter_token"
    done = await client.post(url, json=view, headers=session["auth"])
    assert done.status_code == 204
    state = (await client.get(f"/api/v1/sessions/{session['session_id']}")).json()
    assert state["view"] == {
        "modelId": None,
        "analysisId": None,
        "layer": "conv1",
        "channel": 2,
        "y": None,
        "x": None,
    }


@pytest.mark.parametrize(
    "view",
    [
        {"layer": "conv1", "script": "alert(1)"},
        {"analysisId": "../../etc/passwd"},
        {"channel": -1},
        {"modelId": "a b"},
        {"layer": "x" * 257},
    ],
)
async def test_views_are_validated(client: httpx.AsyncClient, session: dict, view: dict) -> None:
    response = await client.post(session["view_url"], json=view, headers=session["auth"])
    assert response.status_code == 422


async def test_unknown_sessions_are_404(client: httpx.AsyncClient, session: dict) -> None:
    unknown = "A" * 16
    for method, url in (
        ("GET", f"/api/v1/sessions/{unknown}"),
        ("GET", f"/api/v1/sessions/{unknown}/events"),
        ("POST", f"/api/v1/sessions/{unknown}/view"),
        ("DELETE", f"/api/v1/sessions/{unknown}"),
    ):
        response = await client.request(method, url, json={}, headers=session["auth"])
        assert response.status_code == 404, (method, url)
        assert response.json()["error"]["code"] == "session_not_found"
    assert (await client.get("/api/v1/sessions/short/events")).status_code == 422


async def test_followers_get_the_current_view_then_each_new_one(
    client: httpx.AsyncClient, session: dict, hub: SessionHub
) -> None:
    auth = session["auth"]
    await client.post(session["view_url"], json={"layer": "conv1"}, headers=auth)
    streamed: dict[str, httpx.Response] = {}

    async def follow() -> None:
        streamed["response"] = await client.get(session["events_url"])

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        await wait_until(lambda: hub.follower_count == 1)
        await client.post(session["view_url"], json={"layer": "conv2", "channel": 3}, headers=auth)
    response = streamed["response"]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-accel-buffering"] == "no"
    events, heartbeats, other = parse_events(response.text)
    assert events == [("view", {"layer": "conv1"}), ("view", {"layer": "conv2", "channel": 3})]
    assert other == ["retry: 3000"]
    assert 1 <= heartbeats <= STREAM_SECONDS / HEARTBEAT_SECONDS
    assert hub.follower_count == 0


async def test_ending_the_session_ends_every_stream(
    client: httpx.AsyncClient, session: dict, hub: SessionHub
) -> None:
    streamed: dict[str, httpx.Response] = {}

    async def follow() -> None:
        streamed["response"] = await client.get(session["events_url"])

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        await wait_until(lambda: hub.follower_count == 1)
        wrong = await client.delete(
            f"/api/v1/sessions/{session['session_id']}", headers={"Authorization": "Bearer x"}
        )
        assert wrong.status_code == 403
        ended = await client.delete(
            f"/api/v1/sessions/{session['session_id']}", headers=session["auth"]
        )
        assert ended.status_code == 204
    events, _, _ = parse_events(streamed["response"].text)
    assert events == [("end", {})]
    assert (await client.get(session["events_url"])).status_code == 404


async def test_session_and_follower_limits_answer_503_with_retry_after(
    client: httpx.AsyncClient, session: dict, hub: SessionHub
) -> None:
    assert (await client.post("/api/v1/sessions")).status_code == 201
    refused = await client.post("/api/v1/sessions")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    async with anyio.create_task_group() as group:
        group.start_soon(client.get, session["events_url"])
        await wait_until(lambda: hub.follower_count == 1)
        second = await client.get(session["events_url"])
        assert second.status_code == 503 and second.json()["error"]["code"] == "busy"
