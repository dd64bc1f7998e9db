"""The bounded inference queue: a few forwards at a time, a waiting room, and a clear "full" signal.

CPU-bound torch work runs in worker threads so the event loop keeps answering (`/healthz`, cached
atlases) while a forward runs. Admission is counted before waiting: when `concurrency + max_waiting`
jobs are already admitted the caller gets `QueueFullError` at once (the API turns it into 503 +
Retry-After). A caller cancelled while waiting (client gone) leaves the queue and frees its place.

Micro-batching (`run_batched`): jobs with the same key (one model) that wait at the same moment
share one call. The first in line leads: it waits at most `batch_wait` seconds for company (or
until `max_batch` have gathered), takes a slot, and runs everyone gathered by then. Each job still
holds its own admitted place, and a job cancelled before its batch starts leaves the line (a
cancelled leader hands the lead to the next in line).
"""

import ctypes
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
Item = TypeVar("Item")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter numbers
_M_ARENA_MAX = -8


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Make glibc return freed blocks of at least `threshold_bytes` to the OS at once.

    glibc raises its mmap threshold each time a large block is freed, so later feature maps (MBs
    each, allocated by many worker threads) come from per-thread heaps that rarely shrink. Measured
    on EfficientNet-Lite0: 160 photo analyses grew the server to 10.8 GB RSS with 1.15 GB of
    caches; with a fixed 64 KiB threshold it stays near 1.5 GB. False where libc is not glibc.
    """
    return _mallopt(_M_MMAP_THRESHOLD, threshold_bytes)


def limit_malloc_arenas(arenas: int) -> bool:
    """Let glibc's malloc use at most `arenas` heaps, whichever threads allocate.

    glibc gives threads heaps of their own, up to 8 per core; the inference, decode and request
    threads each keep freed feature maps in theirs. Measured (bench/classroom.py, a cold class of
    60 on one worker, 2 cores): peak RSS 1,408 MiB by default, 988 MiB with 2 arenas, with
    analyze p95 914 vs 1,015 ms and layer p95 2,487 vs 2,404 ms. Takes effect for heaps made
    after the call, so it runs before the server starts its threads. False where libc is not glibc.
    """
    return _mallopt(_M_ARENA_MAX, arenas)


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's mallopt(); False where libc is not glibc (or refuses the value)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(parameter, value))
    except (OSError, AttributeError):
        return False


class QueueFullError(RuntimeError):
    """Every running and waiting place is taken."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy: every inference slot and waiting place is taken")
        self.retry_after = retry_after


UPLOAD, FOLLOW_UP = 0, 1
"""Priorities: a new analysis goes before recomputing an old one's layers."""


class _PrioritySlots:
    """``concurrency`` slots handed out by priority, first come first served within one.

    A student's upload never waits behind a queue of layer recomputes; a granted slot passes
    straight to the next waiter on release, so nobody can overtake in between.
    """

    def __init__(self, concurrency: int) -> None:
        self.free = concurrency
        self._waiting: tuple[deque[anyio.Event], ...] = (deque(), deque())

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._waiting)

    async def acquire(self, priority: int) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        granted = anyio.Event()
        self._waiting[priority].append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted in self._waiting[priority]:
                self._waiting[priority].remove(granted)
            else:  # granted just as it was cancelled: pass the slot on
                self.release()
            raise

    def release(self) -> None:
        for line in self._waiting:
            if line:
                line.popleft().set()
                return
        self.free += 1


@dataclass(eq=False)
class _BatchJob:
    """One caller's item in a batch line; `wake` fires when it must lead or its result is in."""

    item: Any
    wake: anyio.Event = field(default_factory=anyio.Event)
    taken: bool = False
    finished: bool = False
    result: Any = None
    error: Exception | None = None


@dataclass(eq=False)
class _BatchLine:
    """Jobs of one key waiting for a batch, oldest first; `full` fires at `max_batch` jobs."""

    jobs: deque[_BatchJob] = field(default_factory=deque)
    full: anyio.Event = field(default_factory=anyio.Event)


class InferenceQueue:
    """At most `concurrency` jobs run; at most `max_waiting` more wait; the rest are refused."""

    def __init__(
        self,
        concurrency: int,
        max_waiting: int,
        retry_after: int = 2,
        *,
        max_batch: int = 1,
        batch_wait: float = 0.0,
    ) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self._slots = _PrioritySlots(concurrency)
        self._threads = anyio.CapacityLimiter(concurrency)
        self._admitted = 0
        self._lines: dict[Hashable, _BatchLine] = {}
        self.completed = 0
        self.rejected = 0
        self.batch_sizes: list[int] = []

    @property
    def admitted(self) -> int:
        """Jobs running or waiting right now."""
        return self._admitted

    @property
    def running(self) -> int:
        return self.concurrency - self._slots.free

    def _admit(self) -> None:
        if self._admitted >= self.concurrency + self.max_waiting:
            self.rejected += 1
            raise QueueFullError(self.retry_after)
        self._admitted += 1

    async def run(self, fn: Callable[..., T], *args: object, priority: int = FOLLOW_UP) -> T:
        """Run `fn(*args)` in a worker thread once a slot is free (uploads before follow-ups)."""
        self._admit()
        try:
            await self._slots.acquire(priority)
            try:
                result = await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)
            finally:
                self._slots.release()
        finally:
            self._admitted -= 1
        self.completed += 1
        return result

    async def run_batched(
        self, key: Hashable, item: Item, fn: Callable[[list[Item]], list[T]]
    ) -> T:
        """This item's share of `fn(items)`, called once for the waiting items with the same key.

        `fn` must return one result per item, in order; if it raises, every job of the batch
        raises that error.
        """
        self._admit()
        line = self._lines.setdefault(key, _BatchLine())
        job = _BatchJob(item)
        line.jobs.append(job)
        if len(line.jobs) == 1:
            job.wake.set()
        if len(line.jobs) >= self.max_batch:
            line.full.set()
        try:
            await job.wake.wait()
            if not job.finished:
                await self._lead(key, line, fn)
        finally:
            self._admitted -= 1
            if not job.taken:
                self._leave(key, line, job)
        if job.error is not None:
            raise job.error
        self.completed += 1
        return job.result

    async def _lead(
        self, key: Hashable, line: _BatchLine, fn: Callable[[list[Any]], list[Any]]
    ) -> None:
        """Gather company briefly, take a slot, run the batch and hand out the results."""
        if len(line.jobs) < self.max_batch:
            with anyio.move_on_after(self.batch_wait):
                await line.full.wait()
        await self._slots.acquire(UPLOAD)
        try:
            batch = [line.jobs.popleft() for _ in range(min(self.max_batch, len(line.jobs)))]
            for job in batch:
                job.taken = True
            line.full = anyio.Event()
            if len(line.jobs) >= self.max_batch:
                line.full.set()
            self._promote(key, line)
            self.batch_sizes.append(len(batch))
            try:
                results = await anyio.to_thread.run_sync(
                    fn, [job.item for job in batch], limiter=self._threads
                )
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} returned {len(results)} results")
            except Exception as error:
                for job in batch:
                    job.error = error
            else:
                for job, result in zip(batch, results, strict=True):
                    job.result = result
            finally:
                for job in batch:
                    job.finished = True
                    job.wake.set()
        finally:
            self._slots.release()

    def _leave(self, key: Hashable, line: _BatchLine, job: _BatchJob) -> None:
        """A job cancelled before its batch started leaves the line; the lead passes on."""
        if job in line.jobs:
            line.jobs.remove(job)
        self._promote(key, line)

    def _promote(self, key: Hashable, line: _BatchLine) -> None:
        if line.jobs:
            line.jobs[0].wake.set()
        elif self._lines.get(key) is line:
            del self._lines[key]
