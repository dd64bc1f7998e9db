"""Two real servers sharing one real Redis: what one analyzes or presents, the other serves."""

import queue
import re
import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest

from app.launch import running_redis, running_servers
from app.services.sessions import (
    SESSION_KEY,
    SessionHub,
    SessionLimitError,
    SessionLimits,
    token_hash,
)
from app.services.shared_records import redis_client
from tests.conftest import sample_photo

pytestmark = pytest.mark.e2e

LAYERS = ("_conv_stem", "_blocks.5", "_act_head", "_fc")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: run scripts/install-test-deps.sh (make test-deps)")
    with running_redis() as url:
        yield url


@pytest.fixture(scope="module")
def servers(redis_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Server one runs two workers behind one port and its client opens a fresh connection for
    every request, so requests land on either worker; server two is a single process."""
    fresh_connection_each_time = httpx.Limits(max_keepalive_connections=0)
    with (
        running_servers(env={"CONVLENS_REDIS_URL": redis_url}, workers=(2, 1)) as (first, second),
        httpx.Client(base_url=first, timeout=60, limits=fresh_connection_each_time) as one,
        httpx.Client(base_url=second, timeout=60) as other,
    ):
        yield one, other


def analyze(http: httpx.Client, photo: str) -> dict:
    response = http.post(
        "/api/v1/models/efficientnet-lite0/analyze",
        files={"image": (photo, sample_photo(photo), "image/png")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_an_analysis_made_on_one_server_is_served_by_the_other(
    servers: tuple[httpx.Client, httpx.Client],
) -> None:
    one, other = servers
    made = analyze(one, "chelsea.png")
    assert made["cached"] is False
    base = f"/api/v1/analyses/{made['analysis_id']}"
    assert other.get(base).json() == {**made, "cached": True}
    urls = [f"{base}/input.png", f"{base}/input/channels/1"]
    for layer in LAYERS:
        urls += [f"{base}/layers/{layer}", f"{base}/layers/{layer}/atlas.png"]
        urls += [f"{base}/layers/{layer}/channels/0", f"{base}/layers/{layer}/channels/7"]
    for url in urls:
        here, there = one.get(url), other.get(url)
        assert (here.status_code, there.status_code) == (200, 200), url
        assert there.content == here.content, url
        assert there.headers["etag"] == here.headers["etag"], url
        revalidated = other.get(url, headers={"If-None-Match": here.headers["etag"]})
        assert revalidated.status_code == 304, url


def test_the_other_server_reopens_the_permalink_and_reuses_the_record(
    servers: tuple[httpx.Client, httpx.Client],
) -> None:
    one, other = servers
    made = analyze(one, "coffee.png")
    page = other.get(f"/a/{made['analysis_id']}?layer=_blocks.2", headers={"Accept": "text/html"})
    assert page.status_code == 200
    body_tag = re.search(r"<body[^>]*>", page.text).group(0)
    assert f'data-analysis-id="{made["analysis_id"]}"' in body_tag
    assert 'data-model-id="efficientnet-lite0"' in body_tag
    again = analyze(other, "coffee.png")
    assert (again["analysis_id"], again["cached"]) == (made["analysis_id"], True)
    assert again["logits"] == made["logits"]
    missing = other.get(f"/a/{'f' * 32}", headers={"Accept": "application/json"})
    assert missing.status_code == 404


def follow(base_url: str, events_url: str, lines: "queue.Queue[str]") -> None:
    """Read the event stream line by line into `lines` until it ends."""
    with (
        httpx.Client(base_url=base_url, timeout=30) as http,
        http.stream("GET", events_url) as stream,
    ):
        for line in stream.iter_lines():
            lines.put(line)
    lines.put("<closed>")


def next_event(lines: "queue.Queue[str]") -> tuple[str, str]:
    while (line := lines.get(timeout=20)) != "<closed>":
        if line.startswith("event: "):
            return line.removeprefix("event: "), lines.get(timeout=20).removeprefix("data: ")
    raise AssertionError("the stream closed before the next event")


def test_students_on_one_server_follow_a_presenter_on_the_other(
    servers: tuple[httpx.Client, httpx.Client],
) -> None:
    one, other = servers
    created = one.post("/api/v1/sessions").json()
    auth = {"Authorization": f"Bearer {created['presenter_token']}"}
    assert other.get(f"/api/v1/sessions/{created['session_id']}").status_code == 200
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=follow, args=(str(other.base_url), created["events_url"], lines), daemon=True
    )
    reader.start()
    assert lines.get(timeout=20) == "retry: 3000"
    view = {"analysisId": "a" * 32, "layer": "_blocks.5", "channel": 7, "y": 3, "x": 4}
    assert one.post(created["view_url"], json=view, headers=auth).status_code == 204
    assert next_event(lines) == (
        "view",
        '{"analysisId":"' + "a" * 32 + '","layer":"_blocks.5","channel":7,"y":3,"x":4}',
    )
    wrong = other.post(created["view_url"], json=view, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 403
    assert one.delete(f"/api/v1/sessions/{created['session_id']}", headers=auth).status_code == 204
    assert next_event(lines) == ("end", "{}")
    reader.join(timeout=20)
    assert not reader.is_alive()


def test_every_worker_behind_one_port_serves_every_record(
    servers: tuple[httpx.Client, httpx.Client],
) -> None:
    one, _ = servers
    made = analyze(one, "astronaut.png")
    url = f"/api/v1/analyses/{made['analysis_id']}/layers/_blocks.3/atlas.png"
    answers = [one.get(url) for _ in range(12)]
    assert [response.status_code for response in answers] == [200] * 12
    assert len({response.content for response in answers}) == 1


@pytest.mark.anyio
async def test_sessions_in_redis_are_bounded_hashed_and_expire(redis_url: str) -> None:
    own_database = redis_url.removesuffix("/0") + "/1"
    async with redis_client(own_database, timeout=2.0) as redis:
        hub = SessionHub(SessionLimits(max_sessions=2, max_followers=10, ttl_seconds=120), redis)
        first = await hub.create()
        await hub.create()
        with pytest.raises(SessionLimitError):
            await hub.create()
        key = SESSION_KEY.format(first.session_id)
        assert 0 < await redis.ttl(key) <= 120
        stored = await redis.hget(key, "token")
        assert stored.decode() == token_hash(first.presenter_token) != first.presenter_token
        await hub.end(first.session_id, first.presenter_token)
        assert await redis.exists(key) == 0
        third = await hub.create()
        assert await hub.current_view(third.session_id) is None
