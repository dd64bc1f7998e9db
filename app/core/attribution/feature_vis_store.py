"""Feature visualizations on disk, and the background worker that makes the missing ones.

A visualization takes seconds to minutes, so it is never computed inside a request: the store
keeps finished ones as ``<key>.png`` + ``<key>.json`` (written atomically; the key hashes model,
weights, layer, channel and options), and ``FeatureVisJobs`` computes missing ones on its own
thread pool, apart from the inference queue. ``convlens feature-vis`` fills the same store ahead
of time.
"""

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.attribution.feature_vis import FeatureVis, FeatureVisOptions
from app.core.encode import png_bytes


class FeatureVisBusyError(RuntimeError):
    """Every background place is taken; ask again later."""


class FeatureVisFailedError(RuntimeError):
    """The background computation raised; the message says why.

    ``invalid``: it raised a ValueError, so this layer and channel cannot be visualized (a layer
    the optimised image's forward does not reach, say) rather than the server failing.
    """

    def __init__(self, message: str, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


@dataclass(frozen=True)
class StoredFeatureVis:
    """A finished visualization: its PNG and what produced it."""

    key: str
    png: bytes
    metadata: dict[str, Any]


def feature_vis_key(
    model_id: str, weights_sha256: str, layer: str, channel: int, options: FeatureVisOptions
) -> str:
    """Stable file key: changing weights or any option gives a new key (no stale images)."""
    identity = {
        "model_id": model_id,
        "weights_sha256": weights_sha256,
        "layer": layer,
        "channel": channel,
        "options": options.as_key(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(data)
    os.replace(handle.name, path)


class FeatureVisStore:
    """Finished visualizations under ``directory`` (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, key: str) -> StoredFeatureVis | None:
        """The stored result, or None when it was never written (or is unreadable)."""
        try:
            metadata = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
            png = (self.directory / f"{key}.png").read_bytes()
        except (OSError, ValueError):
            return None
        return StoredFeatureVis(key, png, metadata)

    def put(self, key: str, result: FeatureVis, model_id: str) -> StoredFeatureVis:
        """Write the PNG, then the JSON (whose presence marks the pair complete)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        png = png_bytes(result.image)
        metadata = {
            "model_id": model_id,
            "layer": result.layer,
            "channel": result.channel,
            "start_activation": result.start_activation,
            "final_activation": result.final_activation,
            "options": result.options.as_key(),
        }
        _write_atomically(self.directory / f"{key}.png", png)
        _write_atomically(
            self.directory / f"{key}.json", json.dumps(metadata, sort_keys=True).encode()
        )
        return StoredFeatureVis(key, png, metadata)


class FeatureVisJobs:
    """A small thread pool that fills the store in the background.

    ``request`` answers at once: the stored result, or None while it is being computed (the
    first request starts the job; later ones join it). At most ``max_pending`` jobs are queued
    or running; a failed job is reported once, to the next request, and may then be retried.
    """

    def __init__(self, store: FeatureVisStore, workers: int = 1, max_pending: int = 16) -> None:
        self.store = store
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="feature-vis")
        self._pending: dict[str, Future[StoredFeatureVis]] = {}
        self._failures: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    def request(self, key: str, compute: Callable[[], StoredFeatureVis]) -> StoredFeatureVis | None:
        """The finished result, or None after making sure a job for ``key`` is under way.

        Raises:
            FeatureVisFailedError: the last job for this key failed.
            FeatureVisBusyError: ``max_pending`` jobs are already queued or running.
        """
        stored = self.store.get(key)
        if stored is not None:
            return stored
        with self._lock:
            if key in self._failures:
                failure = self._failures.pop(key)
                raise FeatureVisFailedError(str(failure), isinstance(failure, ValueError))
            if key in self._pending:
                return None
            stored = self.store.get(key)  # finished between the first look and the lock
            if stored is not None:
                return stored
            if len(self._pending) >= self.max_pending:
                raise FeatureVisBusyError("every feature-visualization place is taken")
            future = self._executor.submit(compute)
            self._pending[key] = future
        future.add_done_callback(lambda done: self._finished(key, done))
        return None

    def _finished(self, key: str, future: Future[StoredFeatureVis]) -> None:
        with self._lock:
            self._pending.pop(key, None)
            failure = None if future.cancelled() else future.exception()
            if failure is not None:
                self._failures[key] = failure

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self) -> None:
        """Drop queued jobs; a running one finishes in its thread (torch cannot be interrupted)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
