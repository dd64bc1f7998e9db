"""The disk store and the background worker behind feature visualization."""

import threading
import time

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

    def compute() -> StoredFeatureVis:
        calls.append(threading.current_thread().name)
        release.wait(5)
        return store.put("k", result(), "m")

    try:
        assert jobs.request("k", compute) is None
        assert jobs.request("k", compute) is None  # joins the running job
        release.set()
        wait_until_idle(jobs)
        stored = jobs.request("k", compute)
        assert stored is not None and stored.metadata["channel"] == 0
        assert len(calls) == 1 and calls[0].startswith("feature-vis")
    finally:
        jobs.shutdown()


def test_full_queue_and_failures(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path), max_pending=1)
    release = threading.Event()

    def blocked() -> StoredFeatureVis:
        release.wait(5)
        raise RuntimeError("out of memory")

    try:
        assert jobs.request("a", blocked) is None
        with pytest.raises(FeatureVisBusyError):
            jobs.request("b", blocked)
        release.set()
        wait_until_idle(jobs)
        with pytest.raises(FeatureVisFailedError, match="out of memory") as failed:
            jobs.request("a", blocked)
        assert not failed.value.invalid  # the server's fault: a 500
        assert jobs.request("a", blocked) is None  # reported once, then retried
    finally:
        jobs.shutdown()


def test_a_value_error_marks_the_request_invalid(tmp_path) -> None:
    jobs = FeatureVisJobs(FeatureVisStore(tmp_path))

    def unreachable() -> StoredFeatureVis:
        raise ValueError("layer 'dark.0' did not run for this input")

    try:
        assert jobs.request("a", unreachable) is None
        wait_until_idle(jobs)
        with pytest.raises(FeatureVisFailedError, match="did not run") as failed:
            jobs.request("a", unreachable)
        assert failed.value.invalid  # the model's, not the server's: a 422
    finally:
        jobs.shutdown()
