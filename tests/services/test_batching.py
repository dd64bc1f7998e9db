"""InferenceQueue.run_batched: waiting jobs of one key share a call; limits and cancels hold."""

import threading
from collections.abc import Callable

import anyio
import pytest

from app.services.inference import InferenceQueue, QueueFullError

pytestmark = pytest.mark.anyio

BLOCK_SECONDS = 5.0


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(BLOCK_SECONDS):
        while not condition():
            await anyio.sleep(0.005)


class RecordingBatchFn:
    """Squares each item and remembers every batch it was called with (thread-safe)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(items))
        return [item * item for item in items]


async def test_jobs_waiting_for_a_busy_slot_run_as_one_batch_in_order() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=4)
    release = threading.Event()
    square = RecordingBatchFn()
    results: dict[int, int] = {}

    async def submit(item: int) -> None:
        results[item] = await queue.run_batched("model", item, square)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            for item in range(1, 7):
                group.start_soon(submit, item)
                await wait_until(lambda item=item: queue.admitted == 1 + item)
            release.set()
    finally:
        release.set()
    assert square.batches == [[1, 2, 3, 4], [5, 6]]
    assert results == {item: item * item for item in range(1, 7)}
    assert queue.batch_sizes == [4, 2]
    assert (queue.completed, queue.admitted, queue.running) == (7, 0, 0)


async def test_keys_never_share_a_batch() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=8)
    release = threading.Event()
    square = RecordingBatchFn()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            for key, item in (("a", 1), ("b", 2), ("a", 3), ("b", 4)):
                group.start_soon(queue.run_batched, key, item, square)
            await wait_until(lambda: queue.admitted == 5)
            release.set()
    finally:
        release.set()
    assert sorted(square.batches) == [[1, 3], [2, 4]]


async def test_the_leader_waits_batch_wait_for_company_when_the_slot_is_free() -> None:
    queue = InferenceQueue(concurrency=2, max_waiting=10, max_batch=8, batch_wait=0.5)
    square = RecordingBatchFn()
    results: list[int] = []

    async def submit(item: int) -> None:
        results.append(await queue.run_batched("model", item, square))

    async with anyio.create_task_group() as group:
        group.start_soon(submit, 2)
        await wait_until(lambda: queue.admitted == 1)
        group.start_soon(submit, 3)
    assert square.batches == [[2, 3]]
    assert sorted(results) == [4, 9]


async def test_a_full_batch_starts_without_waiting_out_batch_wait() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=2, batch_wait=BLOCK_SECONDS)
    square = RecordingBatchFn()
    with anyio.fail_after(BLOCK_SECONDS / 2):
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run_batched, "model", 5, square)
            group.start_soon(queue.run_batched, "model", 6, square)
    assert square.batches == [[5, 6]]


async def test_batched_jobs_count_against_the_waiting_room() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=2, retry_after=9, max_batch=8)
    release = threading.Event()
    square = RecordingBatchFn()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            group.start_soon(queue.run_batched, "model", 1, square)
            group.start_soon(queue.run_batched, "model", 2, square)
            await wait_until(lambda: queue.admitted == 3)
            with pytest.raises(QueueFullError) as refused:
                await queue.run_batched("model", 3, square)
            assert (refused.value.retry_after, queue.rejected) == (9, 1)
            release.set()
    finally:
        release.set()
    assert square.batches == [[1, 2]]


async def test_a_cancelled_follower_leaves_its_batch_and_frees_its_place() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=8)
    release = threading.Event()
    square = RecordingBatchFn()
    follower_scope = anyio.CancelScope()

    async def cancelled_follower() -> None:
        with follower_scope:
            await queue.run_batched("model", 2, square)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            group.start_soon(queue.run_batched, "model", 1, square)
            await wait_until(lambda: queue.admitted == 2)
            group.start_soon(cancelled_follower)
            await wait_until(lambda: queue.admitted == 3)
            follower_scope.cancel()
            await wait_until(lambda: queue.admitted == 2)
            group.start_soon(queue.run_batched, "model", 3, square)
            await wait_until(lambda: queue.admitted == 3)
            release.set()
    finally:
        release.set()
    assert square.batches == [[1, 3]]
    assert (queue.completed, queue.admitted) == (3, 0)


async def test_a_cancelled_leader_hands_the_lead_to_the_next_in_line() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=8)
    release = threading.Event()
    square = RecordingBatchFn()
    leader_scope = anyio.CancelScope()
    results: list[int] = []

    async def cancelled_leader() -> None:
        with leader_scope:
            await queue.run_batched("model", 1, square)

    async def follower(item: int) -> None:
        results.append(await queue.run_batched("model", item, square))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(queue.run, release.wait, BLOCK_SECONDS)
            await wait_until(lambda: queue.running == 1)
            group.start_soon(cancelled_leader)
            await wait_until(lambda: queue.admitted == 2)
            group.start_soon(follower, 2)
            group.start_soon(follower, 3)
            await wait_until(lambda: queue.admitted == 4)
            leader_scope.cancel()
            await wait_until(lambda: queue.admitted == 3)
            release.set()
    finally:
        release.set()
    assert square.batches == [[2, 3]]
    assert sorted(results) == [4, 9]
    assert (queue.admitted, queue.running) == (0, 0)


async def test_a_failing_batch_fails_each_of_its_jobs_and_frees_the_slot() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=10, max_batch=8, batch_wait=0.2)
    errors: list[str] = []

    def broken(items: list[int]) -> list[int]:
        raise ValueError(f"bad batch of {len(items)}")

    async def submit(item: int) -> None:
        with pytest.raises(ValueError) as raised:
            await queue.run_batched("model", item, broken)
        errors.append(str(raised.value))

    async with anyio.create_task_group() as group:
        group.start_soon(submit, 1)
        await wait_until(lambda: queue.admitted == 1)
        group.start_soon(submit, 2)
    assert errors == ["bad batch of 2", "bad batch of 2"]
    assert (queue.admitted, queue.running, queue.completed) == (0, 0, 0)
    assert await queue.run_batched("model", 7, RecordingBatchFn()) == 49


async def test_a_batch_function_returning_the_wrong_count_is_an_error() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=1)
    with pytest.raises(RuntimeError, match="a batch of 1 returned 0 results"):
        await queue.run_batched("model", 1, lambda items: [])
