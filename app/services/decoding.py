"""Uploads are decoded in worker processes, bounded in time and memory, never in an inference slot.

A decode used to run in an inference slot, in a thread nothing could stop: a 737 KB progressive
JPEG (one scan repeated 7,000 times) held a slot for 26 s, and a 77 KB 16-bit PNG added 1.3 GB to
the server. Now each upload goes to one of a few warm worker processes (app/services/
decode_worker.py) that sends back only what the model reads (150 KB for 224²×3):

- past `timeout_seconds` the worker is killed, so the work really stops, and a fresh one takes
  its place; a client that disconnects kills its decode the same way; a decode still running
  after half a second runs on at a lower priority;
- a worker's address space is capped at its idle size plus `memory_bytes`, and images whose mode
  needs more are refused from their header (`decoding_bytes`); the server's own memory grows by
  the pixels it gets back;
- workers are fresh interpreters that import Pillow and numpy, never torch (a fork of the server
  would carry its gigabyte of models and threads; multiprocessing's spawn and forkserver re-run
  the server's main module in every child). One starts in ~0.2 s, ahead of need; a decode costs
  the server ~1 ms more than decoding in a thread.

Waiting for a worker is bounded like the inference queue: `max_waiting` uploads may wait, the rest
get `QueueFullError` (503 + Retry-After).
"""

import atexit
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import anyio.to_thread
import numpy as np

import app
from app.config import Settings, get_settings
from app.core.decode import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooComplexError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from app.core.pixels import PreprocessSpec
from app.services import decode_worker
from app.services.threads import BoundedThreads

logger = logging.getLogger("convlens")

START_TIMEOUT_SECONDS = 30.0
"""A worker not ready by then is broken (starting imports Python, Pillow and numpy: ~0.2 s)."""

DEMOTE_AFTER_SECONDS = 0.5
NICENESS = 10
"""A decode still running after `DEMOTE_AFTER_SECONDS` (a 12 MP photo takes 0.1–0.3 s) runs on
at this lower priority until its deadline, so an expensive upload slows other long decodes, not
the event loop or the forwards. Raising a priority again needs privileges, so a demoted worker is
replaced after its job."""

_IMPORT_ROOT = str(Path(app.__file__).resolve().parent.parent)
"""Where the worker finds the `app` package, whatever the server's working directory."""

MAX_REPLY_HEADER_BYTES = 64 * 1024
"""A worker's JSON answer is a few hundred bytes; anything longer is a broken worker."""

ERRORS: dict[str, type[ImageError]] = {
    error.code: error
    for error in (
        EmptyImageError,
        UnsupportedImageError,
        ImageTooLargeError,
        ImageTooComplexError,
        CorruptImageError,
    )
}


def _python_path() -> str:
    current = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(part for part in (_IMPORT_ROOT, current) if part)


@dataclass(frozen=True)
class DecodeLimits:
    """What one decode may cost (see docs/security.md); `max_jpeg_scans` 0 turns the count off."""

    timeout_seconds: float
    memory_bytes: int
    max_jpeg_scans: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            timeout_seconds=settings.decode_timeout_seconds,
            memory_bytes=settings.request_memory_bytes,
            max_jpeg_scans=settings.max_jpeg_scans,
        )


@dataclass(eq=False)
class _Worker:
    """One worker process and the server's end of its socket."""

    process: subprocess.Popen[bytes]
    connection: Connection
    demoted: bool = False

    @classmethod
    def launch(cls, budget: int) -> Self:
        """Start a worker; it is ready once `wait_ready` returns."""
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", decode_worker.__name__, str(theirs.fileno()), str(budget)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": _python_path()},
            )
        return cls(process, Connection(ours.detach()))

    def wait_ready(self) -> Self:
        connection = self.connection
        if not connection.poll(START_TIMEOUT_SECONDS) or connection.recv_bytes() != b"ready":
            self.stop()
            raise RuntimeError("a decode worker did not start")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def demote(self) -> None:
        os.setpriority(os.PRIO_PROCESS, self.pid, NICENESS)
        self.demoted = True

    def answered_in_time(self, timeout: float) -> bool:
        """Whether the worker answered within `timeout`; it is demoted if it takes long."""
        soon = min(DEMOTE_AFTER_SECONDS, timeout)
        if self.connection.poll(soon):
            return True
        self.demote()
        return self.connection.poll(timeout - soon)

    def kill(self) -> None:
        """SIGKILL: the decode stops at once, whatever it is doing."""
        self.process.kill()

    def stop(self) -> None:
        self.kill()
        self.process.wait()
        self.connection.close()


@dataclass(eq=False)
class _Job:
    """A decode in flight; `abandon` (from the event loop) kills the worker running it."""

    worker: _Worker | None = None
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, worker: _Worker) -> bool:
        with self.lock:
            self.worker = None if self.abandoned else worker
            return not self.abandoned

    def release(self) -> None:
        with self.lock:
            self.worker = None

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            if self.worker is not None:
                self.worker.kill()


class DecodePool:
    """`workers` warm decode processes; each decode has a deadline and a memory budget."""

    def __init__(
        self, limits: DecodeLimits, workers: int, max_waiting: int, retry_after: int = 2
    ) -> None:
        self.limits = limits
        self.workers = workers
        self._threads = BoundedThreads("convlens-decode", workers, max_waiting, retry_after)
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._running: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = False

    async def warm_up(self) -> None:
        """Start the workers on a thread while the server already answers (the app's lifespan
        runs this as a background task), so the first upload finds them ready. If they cannot
        start, that is logged and the first upload tries again."""
        try:
            await anyio.to_thread.run_sync(self.start)
        except (OSError, RuntimeError):
            logger.exception("the decode workers did not start; the first upload will retry")

    def start(self) -> None:
        """Start every worker (side by side: about 0.2 s in all) and wait until they are ready."""
        with self._lock:
            if self._started:
                return
            launched = [_Worker.launch(self.limits.memory_bytes) for _ in range(self.workers)]
            for worker in launched:
                self._running.add(worker.wait_ready())
                self._idle.put(worker)
            self._started = True

    def close(self) -> None:
        """Stop every worker; decodes still running fail."""
        with self._lock:
            self._started = False
            for worker in self._running:
                worker.stop()
            self._running.clear()
            while not self._idle.empty():
                self._idle.get()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(worker.pid for worker in self._running)

    def _retire(self, worker: _Worker) -> None:
        """Stop a killed or exited worker; a fresh one joins the idle workers when it is ready."""
        with self._lock:
            self._running.discard(worker)
        worker.stop()
        threading.Thread(target=self._refill, name="convlens-decode-refill", daemon=True).start()

    def _refill(self) -> None:
        try:
            worker = _Worker.launch(self.limits.memory_bytes).wait_ready()
        except (OSError, RuntimeError):
            self._idle.put(None)  # the next job starts one
            return
        with self._lock:
            if self._started:
                self._running.add(worker)
                self._idle.put(worker)
                return
        worker.stop()

    async def model_pixels(self, data: bytes, max_pixels: int, spec: PreprocessSpec) -> np.ndarray:
        """The (C, H, W) `model_pixels` the model reads for these upload bytes: uint8 levels, or
        float32 in [0, 1] where the preprocessing makes fractions (`input_from_pixels` → input).

        Raises:
            ImageError: the upload is refused (see `decode_image`), or it was still decoding at
                the deadline (`ImageTooComplexError`).
            QueueFullError: every worker is busy and every waiting place taken.
        """
        if not self._started:
            await anyio.to_thread.run_sync(self.start)
        header = {
            "max_pixels": max_pixels,
            "max_bytes": self.limits.memory_bytes,
            "max_jpeg_scans": self.limits.max_jpeg_scans,
            "spec": asdict(spec),
        }
        job = _Job()
        try:
            return await self._threads.run(self._decode, job, header, data, abandon_on_cancel=True)
        except BaseException:
            job.abandon()
            raise

    def _decode(self, job: _Job, header: dict[str, Any], data: bytes) -> np.ndarray:
        """Run one job on an idle worker (in a thread). A worker that ended, was demoted, or broke
        the protocol is replaced; a refusal (`ImageError`) leaves it ready for the next job."""
        worker = self._idle.get() or self._started_worker()
        if not job.take(worker):
            self._give_back(worker)
            raise CorruptImageError("the upload was abandoned before decoding")
        reusable = False
        try:
            pixels = self._exchange(worker, header, data)
            reusable = True
            return pixels
        except _WorkerGone as ended:
            raise ended.error from None
        except ImageError:
            reusable = True
            raise
        finally:
            job.release()
            if reusable and not worker.demoted:
                self._give_back(worker)
            else:
                self._retire(worker)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._running:
                self._idle.put(worker)

    def _started_worker(self) -> _Worker:
        """A worker started now, in place of one that could not be started earlier."""
        try:
            worker = _Worker.launch(self.limits.memory_bytes).wait_ready()
        except BaseException:
            self._idle.put(None)
            raise
        with self._lock:
            self._running.add(worker)
        return worker

    def _exchange(self, worker: _Worker, header: dict[str, Any], data: bytes) -> np.ndarray:
        connection = worker.connection
        try:
            connection.send_bytes(json.dumps(header).encode())
            connection.send_bytes(data)
            if not worker.answered_in_time(self.limits.timeout_seconds):
                worker.kill()
                raise _WorkerGone(
                    ImageTooComplexError(
                        f"the image did not finish decoding within "
                        f"{self.limits.timeout_seconds:g} s; it was abandoned"
                    )
                )
            reply = json.loads(connection.recv_bytes(MAX_REPLY_HEADER_BYTES))
            if "failed" in reply:
                raise RuntimeError(f"the decode worker failed: {reply['failed']}")
            if "refused" in reply:
                error = ERRORS.get(reply["refused"], CorruptImageError)(reply["message"])
                if reply.get("exit"):
                    raise _WorkerGone(error)
                raise error
            spec = header["spec"]
            shape, dtype = tuple(reply["shape"]), np.dtype(reply["dtype"])
            if shape != (spec["channels"], spec["height"], spec["width"]) or dtype not in (
                np.uint8,
                np.float32,
            ):
                raise RuntimeError(f"the decode worker sent {dtype} pixels of shape {shape}")
            pixels = bytearray(dtype.itemsize * int(np.prod(shape)))
            connection.recv_bytes_into(pixels)
        except (EOFError, OSError) as error:
            raise _WorkerGone(
                CorruptImageError("the decoder stopped on this image (its process ended)")
            ) from error
        return np.frombuffer(pixels, dtype=dtype).reshape(shape)


class _WorkerGone(Exception):
    """The worker was killed or exited; `error` is what the upload gets."""

    def __init__(self, error: ImageError) -> None:
        super().__init__(str(error))
        self.error = error


@cache
def shared_decoder() -> DecodePool:
    """This process's decode pool, configured from the environment; the app's lifespan warms it
    up, and the first upload starts it if nothing did."""
    settings = get_settings()
    pool = DecodePool(
        DecodeLimits.from_settings(settings),
        settings.decode_workers,
        settings.queue_size,
        settings.retry_after_seconds,
    )
    atexit.register(pool.close)
    return pool
