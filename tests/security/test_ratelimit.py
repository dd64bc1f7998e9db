"""The optional per-client rate limit: exact token-bucket arithmetic, 429 + Retry-After, off by
default, and reads never limited."""

import pytest
from fastapi import FastAPI

from app.api.ratelimit import RateLimitMiddleware, TokenBuckets
from app.config import Settings
from tests.security.conftest import PHOTO_MODEL
from tests.security.rawasgi import assert_error, assert_healthy, call_asgi

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"
NOT_AN_IMAGE = [("content-type", "text/plain")]  # refused with a cheap 415 once admitted


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=30, burst=3, clock=clock)  # one token every 2 s
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(2.0)
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(1.5)  # refused requests cost nothing
    clock.now += 1.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0  # every client has its own bucket
    clock.now += 60
    assert [buckets.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(2.0)]


def test_the_least_recently_seen_client_is_forgotten_first() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=1, burst=1, clock=clock, max_clients=2)
    assert buckets.take("a") == buckets.take("b") == 0.0
    assert buckets.take("a") > 0  # touches "a": "b" is now the oldest
    assert buckets.take("c") == 0.0  # evicts "b"
    assert buckets.take("b") == 0.0  # a fresh bucket again; evicts "a"
    assert buckets.take("c") == pytest.approx(60.0)  # "c" is remembered: its token is spent


@pytest.mark.anyio
@pytest.mark.parametrize(
    "settings", [Settings(rate_limit_per_minute=60, rate_limit_burst=2)], ids=["60-per-minute"]
)
async def test_a_client_over_its_rate_gets_429_with_retry_after(running_app: FastAPI) -> None:
    statuses = [
        (await call_asgi(running_app, "POST", ANALYZE, NOT_AN_IMAGE)).status_code for _ in range(2)
    ]
    assert statuses == [415, 415]
    response = await call_asgi(running_app, "POST", ANALYZE, NOT_AN_IMAGE)
    assert "try again in 1 s" in assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "1"
    other = await call_asgi(running_app, "POST", ANALYZE, NOT_AN_IMAGE, client="10.0.0.7")
    assert other.status_code == 415
    for _ in range(20):  # reads (a page's dozens of atlases) are never limited
        await assert_healthy(running_app)


@pytest.mark.anyio
async def test_the_rate_limit_is_off_by_default(running_app: FastAPI) -> None:
    assert Settings().rate_limit_per_minute == 0
    middleware = {entry.cls for entry in running_app.user_middleware}
    assert RateLimitMiddleware not in middleware
    for _ in range(30):
        response = await call_asgi(running_app, "POST", ANALYZE, NOT_AN_IMAGE)
        assert response.status_code == 415
