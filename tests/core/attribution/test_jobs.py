"""The job board's books: admission limits, polling keeps a job alive, expiry, cancellation."""

import pytest

from app.core.attribution.jobs import JobBoard, JobLimitError
from app.core.attribution.progress import Cancelled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def board(clock: Clock, total: int = 3, per_client: int = 2) -> JobBoard:
    return JobBoard(total, per_client, keep_seconds=60, abandon_seconds=10, clock=clock)


def test_admission_is_limited_per_client_and_in_total() -> None:
    jobs = board(Clock())
    first, _ = jobs.admit("occlusion", "pupil"), jobs.admit("saliency", "pupil")
    with pytest.raises(JobLimitError) as mine:
        jobs.admit("occlusion", "pupil")
    assert mine.value.per_client
    jobs.admit("occlusion", "teacher")
    with pytest.raises(JobLimitError) as everyone:
        jobs.admit("occlusion", "visitor")
    assert not everyone.value.per_client
    jobs.finish(first, "done", result="map")
    assert jobs.admit("occlusion", "pupil").status == "queued"  # a finished job frees its place
    assert jobs.active == 3


def test_ids_are_unguessable_and_unknown_ids_are_none() -> None:
    jobs = board(Clock())
    job = jobs.admit("occlusion", "pupil")
    assert len(job.job_id) == 16 and int(job.job_id, 16) >= 0
    assert jobs.get(job.job_id) is job
    assert jobs.get("0" * 16) is None


def test_an_unpolled_job_is_cancelled_and_a_finished_one_expires() -> None:
    clock = Clock()
    jobs = board(clock)
    polled, forgotten = jobs.admit("occlusion", "pupil"), jobs.admit("occlusion", "pupil")
    waiting: list[str] = []
    forgotten.stop_waiting = lambda: waiting.append("left the queue")
    clock.now += 8
    jobs.get(polled.job_id)
    clock.now += 5  # 13 s since `forgotten` was last asked about, 5 s for `polled`
    assert jobs.sweep() == [forgotten]
    assert forgotten.progress.cancelled and waiting == ["left the queue"]
    assert not polled.progress.cancelled
    jobs.finish(forgotten, "cancelled")
    clock.now += 61
    jobs.sweep()
    assert jobs.get(forgotten.job_id) is None
    assert jobs.get(polled.job_id) is polled  # still active: never expires while it runs


def test_cancelling_a_running_job_stops_it_at_its_next_step() -> None:
    jobs = board(Clock())
    job = jobs.admit("occlusion", "pupil")
    jobs.start(job)
    job.progress.begin(10)
    jobs.cancel(job)
    with pytest.raises(Cancelled):
        job.progress.advance()
    cancelled_first = jobs.admit("saliency", "pupil")
    jobs.cancel(cancelled_first)
    with pytest.raises(Cancelled):
        jobs.start(cancelled_first)  # a job cancelled while it waited never runs
    assert cancelled_first.status == "queued"


def test_cancel_all_reaches_every_active_job() -> None:
    jobs = board(Clock(), total=4, per_client=4)
    active = [jobs.admit("occlusion", "pupil") for _ in range(3)]
    jobs.finish(active[0], "done")
    jobs.cancel_all()
    assert [job.progress.cancelled for job in active] == [False, True, True]
