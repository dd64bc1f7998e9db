"""The disk store and the background worker behind feature visualization."""

import os
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from app.core.attribution.feature_vis import FeatureVis, FeatureVisOptions
from app.core.attribution.feature_vis_store import (
    FeatureVisBusyError,
    FeatureVisFailedError,
    FeatureVisJobs,
    FeatureVisStore,
    StoredFeatureVis,
    feature_vis_key,
)
from app.core.attribution.progress import Progress
from tests.helpers import decode_png


def wait_until_idle(jobs: FeatureVisJobs) -> None:
    deadline = time.monotonic() + 5
    while jobs.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs.pending == 0


def result(channel: int = 0) -> FeatureVis:
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    return FeatureVis("conv", channel, image, 0.5, 7.25, FeatureVisOptions(steps=3))


def test_key_depends_on_everything_that_changes_the_image() -> None:
    base = feature_vis_key("m", "w", "conv", 1, FeatureVisOptions())
    assert base == feature_vis_key("m", "w", "conv", 1, FeatureVisOptions())
    others = {
        feature_vis_key("m2", "w", "conv", 1, FeatureVisOptions()),
        feature_vis_key("m", "w2", "conv", 1, FeatureVisOptions()),
        feature_vis_key("m", "w", "conv2", 1, FeatureVisOptions()),
        feature_vis_key("m", "w", "conv", 2, FeatureVisOptions()),
        feature_vis_key("m", "w", "conv", 1, FeatureVisOptions(steps=5)),
        feature_vis_key("m", "w", "conv", 1, FeatureVisOptions(seed=1)),
    }
    assert base not in others and len(others) == 6


def test_store_round_trip(tmp_path) -> None:
    store = FeatureVisStore(tmp_path / "cache")
    assert store.get("k") is None
    store.put("k", result(), "m")
    stored = store.get("k")
    assert stored is not None
    np.testing.assert_array_equal(np.asarray(decode_png(stored.png)), result().image)
    assert stored.metadata["final_activation"] == 7.25
    assert stored.metadata["options"]["steps"] == 3
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_jobs_compute_once_in_the_background_then_serve_from_disk(tmp_path) -> None:
    store = FeatureVisStore(tmp_path)
    jobs = FeatureVisJobs(store)
    release, calls = threading.Event(), []

    def compute(progress: Progress) -> StoredFeatureVis:
        calls.append(threading.current_thread().name)
        release.wait(5)
        return store.put("k", result(), "m")

    try:
        first = jobs.request("k", compute)
        assert isinstance(first, Progress)
        assert jobs.request("k", compute) is first  # joins the running job
        release.set()
        wait_until_idle(jobs)
        stored = jobs.request("k", compute)
        assert isinstance(stored, StoredFeatureVis) and stored.metadata["channel"] == 0
        assert len(calls) == 1 and calls[0].startswith("feature-vis")
    finally:
        jobs.shutdown()


def test_full_queue_and_failures(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path), max_pending=1)
    release = threading.Event()

    def blocked(progress: Progress) -> StoredFeatureVis:
        release.wait(5)
        raise RuntimeError("out of memory")

    try:
        assert isinstance(jobs.request("a", blocked), Progress)
        with pytest.raises(FeatureVisBusyError) as busy:
            jobs.request("b", blocked, "someone else")
        assert not busy.value.per_client
        release.set()
        wait_until_idle(jobs)
        with pytest.raises(FeatureVisFailedError, match="out of memory") as failed:
            jobs.request("a", blocked)
        assert not failed.value.invalid  # the server's fault: a 500
        assert isinstance(jobs.request("a", blocked), Progress)  # reported once, then retried
    finally:
        jobs.shutdown()


def test_a_value_error_marks_the_request_invalid(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path))

    def unreachable(progress: Progress) -> StoredFeatureVis:
        raise ValueError("layer 'dark.0' did not run for this input")

    try:
        assert isinstance(jobs.request("a", unreachable), Progress)
        wait_until_idle(jobs)
        with pytest.raises(FeatureVisFailedError, match="did not run") as failed:
            jobs.request("a", unreachable)
        assert failed.value.invalid  # the model's, not the server's: a 422
    finally:
        jobs.shutdown()


def stepping(steps: int, done: threading.Event) -> Callable[[Progress], StoredFeatureVis]:
    """A job of ``steps`` 10 ms steps that reports them like ``visualize_channel`` does."""

    def compute(progress: Progress) -> StoredFeatureVis:
        try:
            progress.begin(steps)
            for _ in range(steps):
                time.sleep(0.01)
                progress.advance()
        finally:
            done.set()
        raise AssertionError("this test never lets a job finish")

    return compute


def test_one_client_holds_at_most_its_share_and_others_still_get_places(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path), workers=1, max_pending=4, per_client=2)
    ends = [threading.Event() for _ in range(3)]
    try:
        assert isinstance(jobs.request("a", stepping(500, ends[0]), "pupil"), Progress)
        assert isinstance(jobs.request("b", stepping(500, ends[1]), "pupil"), Progress)
        with pytest.raises(FeatureVisBusyError) as refused:
            jobs.request("c", stepping(500, ends[2]), "pupil")
        assert refused.value.per_client
        assert isinstance(jobs.request("c", stepping(500, ends[2]), "teacher"), Progress)
        assert isinstance(jobs.request("a", stepping(500, ends[0]), "teacher"), Progress)  # joins
    finally:
        jobs.shutdown()
        assert ends[0].wait(2)  # the running one stops; the queued ones never start


def test_withdrawing_cancels_only_when_nobody_else_waits(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path))
    ended = threading.Event()
    try:
        progress = jobs.request("k", stepping(10_000, ended), "pupil")
        assert isinstance(progress, Progress)
        assert jobs.request("k", stepping(10_000, ended), "teacher") is progress
        deadline = time.monotonic() + 5
        while progress.done < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not jobs.withdraw("k", "pupil")  # the teacher still waits
        assert not progress.cancelled
        assert jobs.withdraw("k", "teacher")
        assert ended.wait(1), "the job did not stop within a second of its cancellation"
        stopped_at = progress.done
        assert 3 <= stopped_at < 10_000
        wait_until_idle(jobs)
        time.sleep(0.05)
        assert progress.done == stopped_at  # no step after the stop
        assert not jobs.withdraw("k", "pupil")  # nothing left to cancel
        assert isinstance(jobs.request("k", stepping(1, threading.Event()), "pupil"), Progress)
    finally:
        jobs.shutdown()


def test_a_cancelled_job_is_not_reported_as_a_failure(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path))
    ended = threading.Event()
    try:
        progress = jobs.request("k", stepping(10_000, ended), "pupil")
        assert isinstance(progress, Progress)
        deadline = time.monotonic() + 5
        while progress.done < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        jobs.withdraw("k", "pupil")
        assert ended.wait(2)
        wait_until_idle(jobs)
        assert isinstance(jobs.request("k", stepping(1, threading.Event())), Progress)
    finally:
        jobs.shutdown()


def sized_result(side: int) -> FeatureVis:
    noise = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return FeatureVis("conv", 0, noise, 0.0, 1.0, FeatureVisOptions())


def test_the_store_keeps_its_byte_budget_by_deleting_the_oldest_first(tmp_path) -> None:
    unbounded = FeatureVisStore(tmp_path / "measure")
    unbounded.put("probe", sized_result(32), "m")
    one = unbounded.size()  # the PNG and JSON of one 32×32 noise image
    store = FeatureVisStore(tmp_path / "cache", max_bytes=3 * one + one // 2)
    for index in range(8):
        store.put(f"k{index}", sized_result(32), "m")
        path = tmp_path / "cache" / f"k{index}.json"
        os.utime(path, (1000.0 + index, 1000.0 + index))  # a strict age order
        os.utime(path.with_suffix(".png"), (1000.0 + index, 1000.0 + index))
        assert store.size() <= store.max_bytes
    kept = sorted(path.stem for path in (tmp_path / "cache").glob("*.json"))
    assert kept == ["k5", "k6", "k7"]  # the three newest
    assert sorted(path.stem for path in (tmp_path / "cache").glob("*.png")) == kept
    assert store.get("k7") is not None and store.get("k0") is None


def test_the_newest_result_is_kept_even_when_it_alone_is_over_budget(tmp_path) -> None:
    store = FeatureVisStore(tmp_path, max_bytes=10)
    store.put("old", sized_result(8), "m")
    store.put("new", sized_result(16), "m")
    assert store.get("new") is not None and store.get("old") is None


def test_stale_temporary_files_count_and_are_deleted(tmp_path) -> None:
    store = FeatureVisStore(tmp_path, max_bytes=100_000)
    stale = tmp_path / "left-over.tmp"
    stale.write_bytes(b"x" * 200_000)
    os.utime(stale, (1000.0, 1000.0))
    store.put("k", sized_result(8), "m")
    assert not stale.exists() and store.get("k") is not None


def test_withdrawing_a_job_that_waits_behind_another_removes_it(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path), workers=1)
    first_ended, never = threading.Event(), threading.Event()
    try:
        running = jobs.request("a", stepping(10_000, first_ended), "pupil")
        queued = jobs.request("b", stepping(10_000, never), "pupil")
        assert isinstance(running, Progress) and isinstance(queued, Progress)
        assert jobs.withdraw("b", "pupil")  # still in the executor's queue: it never starts
        assert not jobs.is_pending("b") and jobs.pending == 1
        assert jobs.withdraw("a", "pupil")
        assert first_ended.wait(2) and not never.is_set()
    finally:
        jobs.shutdown()
