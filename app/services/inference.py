"""The bounded inference queue: a few forwards at a time, a waiting room, and a clear "full" signal.

CPU-bound torch work runs in worker threads so the event loop keeps answering (`/healthz`, cached
atlases) while a forward runs. Admission is counted before waiting: when `concurrency + max_waiting`
jobs are already admitted the caller gets `QueueFullError` at once (the API turns it into 503 +
Retry-After). A caller cancelled while waiting (client gone) leaves the queue and frees its place.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class QueueFullError(RuntimeError):
    """Every running and waiting place is taken."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy: every inference slot and waiting place is taken")
        self.retry_after = retry_after


class InferenceQueue:
    """At most `concurrency` jobs run; at most `max_waiting` more wait; the rest are refused."""

    def __init__(self, concurrency: int, max_waiting: int, retry_after: int = 2) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._admitted = 0
        self.completed = 0
        self.rejected = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting right now."""
        return self._admitted

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` in a worker thread once a slot is free."""
        if self._admitted >= self.concurrency + self.max_waiting:
            self.rejected += 1
            raise QueueFullError(self.retry_after)
        self._admitted += 1
        try:
            result = await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        finally:
            self._admitted -= 1
        self.completed += 1
        return result
