"""A few worker threads of one's own: bounded work that never borrows the 40-thread default pool.

`anyio.to_thread.run_sync` without a limiter shares the default pool (40 threads) with every
plain `def` route; one kind of work could then hold all of them. `BoundedThreads` runs at most
`concurrency` calls at once, lets at most `max_waiting` more wait, and refuses the rest with
`QueueFullError` (the API's 503 + Retry-After), the way the inference queue does.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from app.services.inference import QueueFullError

T = TypeVar("T")


class BoundedThreads:
    """At most `concurrency` calls in worker threads, `max_waiting` waiting, the rest refused.

    Holds no event-loop state itself (its limiter is made per event loop on first use), so one
    instance can live at module level and serve every app and test loop.
    """

    def __init__(self, name: str, concurrency: int, max_waiting: int, retry_after: int = 2) -> None:
        self.name = name
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self._limiters: RunVar[anyio.CapacityLimiter] = RunVar(name)

    def _limiter(self) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(None)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.concurrency)
            self._limiters.set(limiter)
        return limiter

    async def run(self, fn: Callable[..., T], *args: object, abandon_on_cancel: bool = False) -> T:
        """`fn(*args)` in one of these threads once one is free.

        With `abandon_on_cancel`, a cancelled caller returns at once and the call finishes
        unobserved (its thread then no longer counts against `concurrency`).

        Raises:
            QueueFullError: every thread is busy and every waiting place taken.
        """
        limiter = self._limiter()
        statistics = limiter.statistics()
        if (
            statistics.borrowed_tokens >= self.concurrency
            and statistics.tasks_waiting >= self.max_waiting
        ):
            raise QueueFullError(self.retry_after)
        return await anyio.to_thread.run_sync(
            fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel
        )
