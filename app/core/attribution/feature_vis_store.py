"""Feature visualizations on disk, and the background worker that makes the missing ones.

A visualization takes seconds to minutes, so it is never computed inside a request: the store
keeps finished ones as ``<key>.png`` + ``<key>.json`` (written atomically; the key hashes model,
weights, layer, channel and options), and ``FeatureVisJobs`` computes missing ones on its own
thread pool, apart from the inference queue. ``convlens feature-vis`` fills the same store ahead
of time.

Both are bounded, because any visitor can ask for any channel: the store keeps at most
``max_bytes`` on disk (the oldest visualizations are deleted first), and the worker accepts at
most ``max_pending`` jobs, ``per_client`` of them started by one client. Each job reports its
steps and can be cancelled; a job stops when every client that asked for it withdrew.
"""

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.attribution.feature_vis import FeatureVis, FeatureVisOptions
from app.core.attribution.jobs import JobLimitError
from app.core.attribution.progress import Cancelled, Progress
from app.core.encode import png_bytes

STALE_TEMP_SECONDS = 60.0
"""A ``.tmp`` file this old is left over from a crashed write and counts as evictable."""


class FeatureVisBusyError(JobLimitError):
    """Every background place is taken (``per_client``: every place this client may hold)."""


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
    """Finished visualizations under ``directory`` (created on first write), at most
    ``max_bytes`` of them (None: unbounded, as for ``convlens feature-vis``)."""

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: str) -> StoredFeatureVis | None:
        """The stored result, or None when it was never written (or is unreadable)."""
        try:
            metadata = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
            png = (self.directory / f"{key}.png").read_bytes()
        except (OSError, ValueError):
            return None
        return StoredFeatureVis(key, png, metadata)

    def put(self, key: str, result: FeatureVis, model_id: str) -> StoredFeatureVis:
        """Write the PNG, then the JSON (whose presence marks the pair complete); then delete
        the oldest others while the store is over its budget."""
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
        self.evict(keep=key)
        return StoredFeatureVis(key, png, metadata)

    def size(self) -> int:
        """Bytes of every file in the store."""
        return sum(size for _, size, _ in self._files())

    def evict(self, keep: str = "") -> int:
        """Delete the oldest visualizations (and stale temporary files) until the store fits
        ``max_bytes``; ``keep`` is never deleted. Returns the bytes freed."""
        if self.max_bytes is None:
            return 0
        with self._lock:
            files = self._files()
            used = sum(size for _, size, _ in files)
            entries: dict[str, list[tuple[Path, int, float]]] = {}
            for path, size, modified in files:
                stale = path.suffix == ".tmp" and time.time() - modified > STALE_TEMP_SECONDS
                if path.suffix != ".tmp" or stale:
                    entries.setdefault(path.name if stale else path.stem, []).append(
                        (path, size, modified)
                    )
            freed = 0
            oldest_first = sorted(entries.items(), key=lambda item: max(m for *_, m in item[1]))
            for name, paths in oldest_first:
                if used - freed <= self.max_bytes:
                    break
                if name == keep:
                    continue
                for path, size, _ in paths:
                    try:
                        path.unlink()
                        freed += size
                    except OSError:
                        pass  # another process deleted it first
            return freed

    def _files(self) -> list[tuple[Path, int, float]]:
        found = []
        try:
            paths = list(self.directory.iterdir())
        except OSError:
            return []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((path, stat.st_size, stat.st_mtime))
        return found


@dataclass(eq=False)
class _Job:
    future: Future[StoredFeatureVis]
    progress: Progress
    starter: str
    clients: set[str] = field(default_factory=set)


class FeatureVisJobs:
    """A small thread pool that fills the store in the background.

    ``request`` answers at once: the stored result, or the running job's ``Progress`` (the first
    request starts the job; later ones join it). At most ``max_pending`` jobs are queued or
    running, at most ``per_client`` of them started by one client; a failed job is reported once,
    to the next request, and may then be retried. ``withdraw`` takes a client's interest back;
    the job is cancelled when nobody is left waiting for it.
    """

    def __init__(
        self,
        store: FeatureVisStore,
        workers: int = 1,
        max_pending: int = 16,
        per_client: int | None = None,
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self.per_client = per_client or max_pending
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="feature-vis")
        self._pending: dict[str, _Job] = {}
        self._failures: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    def request(
        self, key: str, compute: Callable[[Progress], StoredFeatureVis], client: str = ""
    ) -> StoredFeatureVis | Progress:
        """The finished result, or the progress of the job for ``key`` (started if need be).

        Raises:
            FeatureVisFailedError: the last job for this key failed.
            FeatureVisBusyError: ``max_pending`` jobs are queued or running, or ``per_client``
                of them were started by ``client``.
        """
        stored = self.store.get(key)
        if stored is not None:
            return stored
        with self._lock:
            if key in self._failures:
                failure = self._failures.pop(key)
                raise FeatureVisFailedError(str(failure), isinstance(failure, ValueError))
            job = self._pending.get(key)
            if job is not None:
                job.clients.add(client)
                return job.progress
            stored = self.store.get(key)  # finished between the first look and the lock
            if stored is not None:
                return stored
            if len(self._pending) >= self.max_pending:
                raise FeatureVisBusyError("every feature-visualization place is taken")
            mine = sum(1 for job in self._pending.values() if job.starter == client)
            if mine >= self.per_client:
                raise FeatureVisBusyError(
                    f"at most {self.per_client} feature visualizations per client at a time",
                    per_client=True,
                )
            progress = Progress()
            future = self._executor.submit(compute, progress)
            self._pending[key] = _Job(future, progress, client, {client})
        future.add_done_callback(lambda done: self._finished(key, done))
        return progress

    def withdraw(self, key: str, client: str = "") -> bool:
        """``client`` no longer waits for ``key``; True when that cancelled the job (nobody
        else waits), which then stops before its next step and frees its place."""
        with self._lock:
            job = self._pending.get(key)
            if job is None:
                return False
            job.clients.discard(client)
            if job.clients:
                return False
            job.progress.cancel()
        job.future.cancel()  # outside the lock: a queued future runs `_finished` right here
        return True

    def _finished(self, key: str, future: Future[StoredFeatureVis]) -> None:
        with self._lock:
            self._pending.pop(key, None)
            failure = None if future.cancelled() else future.exception()
            if failure is not None and not isinstance(failure, Cancelled):
                self._failures[key] = failure

    def is_pending(self, key: str) -> bool:
        with self._lock:
            return key in self._pending

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self) -> None:
        """Drop queued jobs and stop the running one before its next step."""
        with self._lock:
            for job in self._pending.values():
                job.progress.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
