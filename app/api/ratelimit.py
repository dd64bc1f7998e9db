"""Optional per-client rate limit (off by default): token buckets keyed by the client's address.

Only requests that can start work count (anything but GET, HEAD and OPTIONS): a page load fetches
dozens of cached atlases, and those must never be refused. Behind a reverse proxy every student
shares the proxy's address unless uvicorn is told to trust its forwarded headers.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.limits import send_refusal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

MAX_TRACKED_CLIENTS = 10_000
"""Buckets kept at most; the least recently seen client is forgotten first (its bucket refills)."""


class TokenBuckets:
    """`per_minute` tokens a minute per client, saved up to `burst`; one token per request."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend a token: 0.0 when allowed, else the seconds until the next token."""
        now = self.clock()
        tokens, updated = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class RateLimitMiddleware:
    """429 + Retry-After for a client that spends its tokens faster than they refill."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            client = scope.get("client")
            wait = self.buckets.take(client[0] if client else "")
            if wait > 0:
                retry_after = str(math.ceil(wait))
                error = HTTPException(
                    429,
                    f"too many requests from your address; try again in {retry_after} s",
                    headers={"Retry-After": retry_after},
                )
                await send_refusal(scope, receive, send, error)
                return
        await self.app(scope, receive, send)
