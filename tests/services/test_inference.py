"""InferenceQueue: bounded running and waiting places, cancellation and errors free them."""

import threading
import time
from collections.abc import Callable

import anyio
import pytest

from app.services.inference import FOLLOW_UP, UPLOAD, InferenceQueue, QueueFullError

pytestmark = pytest.mark.anyio

BLOCK_SECONDS = 5.0
"""Upper bound on how long a blocked job waits, so a failing test cannot hang its worker thread."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(BLOCK_SECONDS):
        while not condition():
            await anyio.sleep(0.005)


async def test_returns_the_result_computed_in_a_worker_thread() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=0)
    assert await queue.run(pow, 2, 10) == 1024
    assert await queue.run(threading.get_ident) != threading.get_ident()
    assert (queue.completed, queue.admitted, queue.running) == (2, 0, 0)


async def test_the_job_after_the_waiting_room_is_refused_at_once() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=2, retry_after=7)
    release = threading.Event()
    results: dict[int, int] = {}
    refused_calls: list[int] = []

    def blocked(tag: int) -> int:
        release.wait(BLOCK_SECONDS)
        return tag

    async def submit(tag: int) -> None:
        results[tag] = await queue.run(blocked, tag)

    try:
        async with anyio.create_task_group() as group:
            for tag in range(3):
                group.start_soon(submit, tag)
            await wait_until(lambda: queue.admitted == 3 and queue.running == 1)
            with pytest.raises(QueueFullError) as raised:
                await queue.run(refused_calls.append, 3)
            assert raised.value.retry_after == 7
            assert (queue.rejected, queue.admitted, queue.running) == (1, 3, 1)
            release.set()
    finally:
        release.set()
    assert results == {0: 0, 1: 1, 2: 2}
    assert refused_calls == []
    assert (queue.completed, queue.admitted, queue.running) == (3, 0, 0)


async def test_a_cancelled_waiting_job_frees_its_place_and_never_runs() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=2)
    release = threading.Event()
    ran: list[str] = []
    waiting_scope = anyio.CancelScope()

    async def wait_then_get_cancelled() -> None:
        with waiting_scope:
            await queue.run(ran.append, "cancelled job")

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            group.start_soon(wait_then_get_cancelled)
            await wait_until(lambda: queue.admitted == 2)
            waiting_scope.cancel()
            await wait_until(lambda: queue.admitted == 1)
            assert queue.running == 1
            # The freed place is usable: two more may wait, the one after them is refused.
            group.start_soon(queue.run, ran.append, "second")
            group.start_soon(queue.run, ran.append, "third")
            await wait_until(lambda: queue.admitted == 3)
            with pytest.raises(QueueFullError):
                await queue.run(ran.append, "refused")
            release.set()
    finally:
        release.set()
    assert waiting_scope.cancel_called
    assert sorted(ran) == ["second", "third"]
    assert (queue.completed, queue.admitted, queue.rejected) == (3, 0, 1)


async def test_an_exception_propagates_and_frees_the_slot() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=0)

    def broken() -> None:
        raise ValueError("bad input tensor")

    with pytest.raises(ValueError, match="bad input tensor"):
        await queue.run(broken)
    assert (queue.admitted, queue.running, queue.completed) == (0, 0, 0)
    assert await queue.run(len, "slot is free again") == 18
    assert (queue.completed, queue.rejected) == (1, 0)


async def test_no_more_than_concurrency_jobs_run_at_once() -> None:
    queue = InferenceQueue(concurrency=2, max_waiting=10)
    lock = threading.Lock()
    running_now = 0
    peak = 0
    both_started = threading.Barrier(2, timeout=BLOCK_SECONDS)

    def job(index: int) -> int:
        nonlocal running_now, peak
        with lock:
            running_now += 1
            peak = max(peak, running_now)
        if index < 2:
            both_started.wait()  # raises BrokenBarrierError unless two really run together
        time.sleep(0.02)
        with lock:
            running_now -= 1
        return index

    results: list[int] = []

    async def submit(index: int) -> None:
        results.append(await queue.run(job, index))

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(submit, index)
            await anyio.sleep(0)
    assert sorted(results) == list(range(6))
    assert peak == 2
    assert (queue.completed, queue.admitted) == (6, 0)


async def test_an_upload_goes_before_waiting_layer_recomputes() -> None:
    """Follow-ups queued first still wait for an upload that arrives after them."""
    queue = InferenceQueue(concurrency=1, max_waiting=8)
    release = threading.Event()
    started: list[str] = []

    def job(tag: str) -> None:
        started.append(tag)
        if tag == "running":
            release.wait(BLOCK_SECONDS)

    async def submit(tag: str, priority: int) -> None:
        await queue.run(job, tag, priority=priority)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(submit, "running", FOLLOW_UP)
            await wait_until(lambda: queue.running == 1)
            for tag in ("layer-1", "layer-2"):
                group.start_soon(submit, tag, FOLLOW_UP)
            await wait_until(lambda: queue.admitted == 3)
            group.start_soon(submit, "upload", UPLOAD)
            await wait_until(lambda: queue.admitted == 4)
            release.set()
    finally:
        release.set()
    assert started == ["running", "upload", "layer-1", "layer-2"]
