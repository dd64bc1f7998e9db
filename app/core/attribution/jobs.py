"""Long attribution computations as jobs: start, poll the progress, fetch the result, cancel.

Occlusion and SmoothGrad take seconds on a photo model. Run as a job, the client sees how many
window positions or noisy copies are done and can cancel; the job then stops before its next
batch and frees its inference slot. The board only keeps the books (admission, status, expiry);
the API runs each job through the inference queue.

Bounds: at most ``total`` jobs queued or running, ``per_client`` of them from one client. A job
nobody polled for ``abandon_seconds`` is cancelled (its page was closed); a finished one is kept
``keep_seconds`` for its result to be fetched.
"""

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from app.core.attribution.progress import Progress

JobKind = Literal["occlusion", "saliency"]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: frozenset[str] = frozenset(("queued", "running"))


class JobLimitError(RuntimeError):
    """No place for another job (``per_client``: this client holds all it may)."""

    def __init__(self, message: str, per_client: bool = False) -> None:
        super().__init__(message)
        self.per_client = per_client


@dataclass(eq=False)
class Job:
    """One computation's state; ``result`` and ``error`` are set when it ends."""

    job_id: str
    kind: JobKind
    client: str
    touched: float
    progress: Progress = field(default_factory=Progress)
    status: JobStatus = "queued"
    result: object = None
    error_code: str = ""
    error: str = ""
    ended: float | None = None
    stop_waiting: Callable[[], None] | None = None
    """Set by the runner: takes a job that waits for a slot out of the line."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class JobBoard:
    """The jobs of one server process, by id."""

    def __init__(
        self,
        total: int,
        per_client: int,
        keep_seconds: float,
        abandon_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.per_client = per_client
        self.keep_seconds = keep_seconds
        self.abandon_seconds = abandon_seconds
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def admit(self, kind: JobKind, client: str) -> Job:
        """A new queued job for ``client``.

        Raises:
            JobLimitError: ``total`` jobs are active, or ``per_client`` of them are this client's.
        """
        self.sweep()
        with self._lock:
            active = [job for job in self._jobs.values() if job.active]
            if len(active) >= self.total:
                raise JobLimitError(
                    f"all {self.total} places for long computations are taken", False
                )
            if sum(1 for job in active if job.client == client) >= self.per_client:
                message = f"at most {self.per_client} long computations per client at a time"
                raise JobLimitError(message, True)
            job = Job(secrets.token_hex(8), kind, client, self.clock())
            self._jobs[job.job_id] = job
            return job

    def get(self, job_id: str) -> Job | None:
        """The job (its poll keeps it alive), or None when unknown or expired."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.touched = self.clock()
            return job

    def start(self, job: Job) -> None:
        """The job got its slot (called from the worker thread)."""
        job.progress.check()
        job.status = "running"

    def finish(
        self, job: Job, status: JobStatus, result: object = None, code: str = "", error: str = ""
    ) -> None:
        with self._lock:
            job.status, job.result, job.error_code, job.error = status, result, code, error
            job.ended = self.clock()

    def cancel(self, job: Job) -> None:
        """Stop the job: out of the line if it waits, before its next batch if it runs."""
        job.progress.cancel()
        if job.status == "queued" and job.stop_waiting is not None:
            job.stop_waiting()

    def sweep(self) -> list[Job]:
        """Cancel abandoned jobs and forget expired finished ones; returns those cancelled."""
        now = self.clock()
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.ended is not None and now - job.ended > self.keep_seconds:
                    del self._jobs[job_id]
            abandoned = [
                job
                for job in self._jobs.values()
                if job.active
                and not job.progress.cancelled
                and now - job.touched > self.abandon_seconds
            ]
        for job in abandoned:
            self.cancel(job)
        return abandoned

    def cancel_all(self) -> None:
        with self._lock:
            active = [job for job in self._jobs.values() if job.active]
        for job in active:
            self.cancel(job)

    @property
    def active(self) -> int:
        with self._lock:
            return sum(1 for job in self._jobs.values() if job.active)
