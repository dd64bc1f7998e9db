"""Presenter sessions over HTTP: tokens, origins, the presenter key, heartbeats, validation, limits,
and the server-sent event stream."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.core.registry import ModelRegistry
from app.main import create_app
from app.services.sessions import SessionHub
from tests.security.rawasgi import assert_error

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
    assert session["heartbeat_url"] == f"/api/v1/sessions/{sid}/heartbeat"
    assert session["idle_seconds"] == 900
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


async def test_the_presenter_heartbeat_needs_the_token(
    client: httpx.AsyncClient, session: dict, hub: SessionHub
) -> None:
    url = session["heartbeat_url"]
    assert_error(await client.post(url), 401, "presenter_token_required")
    wrong = await client.post(url, headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 403, "wrong_presenter_token")
    before = hub._local[session["session_id"]].expires_at
    await anyio.sleep(0.01)
    assert (await client.post(url, headers=session["auth"])).status_code == 204
    assert hub._local[session["session_id"]].expires_at > before
    unknown = url.replace(session["session_id"], "A" * 16)
    assert_error(await client.post(unknown, headers=session["auth"]), 404, "session_not_found")


FOREIGN = ["http://evil.example", "null", "https://testserver", "http://testserver:8080"]


@pytest.mark.parametrize("origin", FOREIGN)
async def test_a_foreign_page_can_neither_start_nor_drive_a_session(
    client: httpx.AsyncClient, session: dict, origin: str
) -> None:
    foreign = {"Origin": origin, **session["auth"]}
    sid = session["session_id"]
    for method, url in (
        ("POST", "/api/v1/sessions"),
        ("POST", session["view_url"]),
        ("POST", session["heartbeat_url"]),
        ("DELETE", f"/api/v1/sessions/{sid}"),
    ):
        response = await client.request(method, url, json={"layer": "x"}, headers=foreign)
        assert origin in assert_error(response, 403, "foreign_origin"), (method, url)
    assert (await client.get(f"/api/v1/sessions/{sid}")).json()["view"] is None
    assert (await client.get(f"/api/v1/sessions/{sid}", headers={"Origin": origin})).is_success


async def test_a_cross_site_fetch_without_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/sessions", headers={"Sec-Fetch-Site": "cross-site"})
    assert_error(response, 403, "foreign_origin")


@pytest.mark.parametrize("origin", ["http://testserver", "HTTP://TestServer:80"])
async def test_the_page_itself_and_plain_clients_may_present(
    client: httpx.AsyncClient, origin: str
) -> None:
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/api/v1/sessions", headers=headers)).status_code == 201
    assert (await client.post("/api/v1/sessions")).status_code == 201


@asynccontextmanager
async def clients_of(
    settings: Settings, registry: ModelRegistry, *addresses: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One in-process client per client address, all talking to one app built from `settings`."""
    app = create_app(settings, registry=registry)
    async with app.router.lifespan_context(app), AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app, client=(address, 50000)),
                    base_url="http://testserver",
                )
            )
            for address in addresses
        ]


async def test_origins_listed_for_cors_may_present(registry: ModelRegistry) -> None:
    settings = Settings(cors_origins=["https://class.example"])
    async with clients_of(settings, registry, "10.0.0.1") as (http,):
        listed = await http.post("/api/v1/sessions", headers={"Origin": "https://class.example"})
        assert listed.status_code == 201
        other = await http.post("/api/v1/sessions", headers={"Origin": "https://b.example"})
        assert "https://b.example" in assert_error(other, 403, "foreign_origin")


async def test_one_address_may_hold_only_its_share_of_sessions(registry: ModelRegistry) -> None:
    settings = Settings(max_sessions=10, sessions_per_client=2, session_idle_seconds=600)
    async with clients_of(settings, registry, "10.0.0.1", "10.0.0.2") as (student, teacher):
        made = [await student.post("/api/v1/sessions") for _ in range(2)]
        assert [response.status_code for response in made] == [201, 201]
        refused = await student.post("/api/v1/sessions")
        assert "2 sessions" in assert_error(refused, 429, "too_many_sessions")
        assert 599 <= int(refused.headers["retry-after"]) <= 600
        assert (await teacher.post("/api/v1/sessions")).status_code == 201
        first = made[0].json()
        auth = {"Authorization": f"Bearer {first['presenter_token']}"}
        ended = await student.delete(f"/api/v1/sessions/{first['session_id']}", headers=auth)
        assert ended.status_code == 204
        assert (await student.post("/api/v1/sessions")).status_code == 201


async def test_a_presenter_key_guards_creating_and_driving_but_not_following(
    registry: ModelRegistry,
) -> None:
    settings = Settings(presenter_key="sesame-42")
    key = {"X-Presenter-Key": "sesame-42"}
    async with clients_of(settings, registry, "10.0.0.1") as (http,):
        assert_error(await http.post("/api/v1/sessions"), 401, "presenter_key_required")
        wrong = await http.post("/api/v1/sessions", headers={"X-Presenter-Key": "sesame"})
        assert_error(wrong, 403, "wrong_presenter_key")
        created = await http.post("/api/v1/sessions", headers=key)
        assert created.status_code == 201
        session = created.json()
        auth = {"Authorization": f"Bearer {session['presenter_token']}"}
        view = {"layer": "conv1"}
        no_key = await http.post(session["view_url"], json=view, headers=auth)
        assert_error(no_key, 401, "presenter_key_required")
        assert_error(await http.post(session["heartbeat_url"], headers=auth), 401)
        assert (await http.post(session["view_url"], json=view, headers=auth | key)).is_success
        assert (await http.post(session["heartbeat_url"], headers=auth | key)).is_success
        state = await http.get(f"/api/v1/sessions/{session['session_id']}")
        assert state.json()["view"]["layer"] == "conv1"
        url = f"/api/v1/sessions/{session['session_id']}"
        assert_error(await http.delete(url, headers=auth), 401, "presenter_key_required")
        assert (await http.delete(url, headers=auth | key)).status_code == 204
