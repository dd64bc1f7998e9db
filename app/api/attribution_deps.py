"""Shared pieces of the attribution routes: their per-app resources, the queue, jobs, PNG data URLs.

``attribution_lifespan`` gives each app one ``AttributionResources`` (random twins, shipped top
patches, the feature-visualization worker) and one ``JobBoard`` for long computations, and stops
both with the app; FastAPI merges it into the app's lifespan because the attribution router
declares it. A job runs as a task of that lifespan, through the inference queue like any other
computation, so it holds one inference slot while it runs and frees it when it ends or is
cancelled.
"""

import base64
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request

from app.api.errors import ApiError
from app.api.middleware import foreign_origin
from app.api.schemas import InputShape
from app.core.attribution.hooks import LayerNotRunError
from app.core.attribution.jobs import Job, JobBoard, JobKind, JobLimitError
from app.core.attribution.progress import Cancelled, Progress
from app.core.attribution.resources import AttributionResources
from app.core.registry import LayerInfo, LoadedModel
from app.services.inference import QueueFullError

T = TypeVar("T")
logger = logging.getLogger("convlens")

SWEEP_SECONDS = 1.0
"""How often abandoned jobs are looked for."""


@asynccontextmanager
async def attribution_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One ``AttributionResources`` and ``JobBoard`` per app; running work stops with the app."""
    settings = app.state.settings
    resources = AttributionResources(
        settings.models_dir,
        settings.feature_vis_dir,
        settings.feature_vis_queue_size,
        settings.live_occlusion_cache_bytes,
        feature_vis_per_client=settings.feature_vis_jobs_per_client,
        feature_vis_bytes=settings.feature_vis_cache_bytes,
    )
    board = JobBoard(
        settings.attribution_jobs,
        settings.attribution_jobs_per_client,
        settings.attribution_job_keep_seconds,
        settings.attribution_job_abandon_seconds,
    )
    app.state.attribution = resources
    app.state.attribution_jobs = board
    try:
        async with anyio.create_task_group() as tasks:
            app.state.attribution_tasks = tasks
            tasks.start_soon(sweep_forever, board)
            try:
                yield
            finally:
                board.cancel_all()
                tasks.cancel_scope.cancel()
    finally:
        resources.close()


async def sweep_forever(board: JobBoard) -> None:
    while True:
        await anyio.sleep(SWEEP_SECONDS)
        board.sweep()


async def get_attribution(request: Request) -> AttributionResources:
    return request.app.state.attribution


async def get_job_board(request: Request) -> JobBoard:
    return request.app.state.attribution_jobs


def client_address(request: Request) -> str:
    """The client's address: jobs are limited per address (a class behind NAT shares one)."""
    return request.client.host if request.client else ""


async def client_of(request: Request) -> str:
    return client_address(request)


async def same_site_writer(request: Request) -> str:
    """The client starting or cancelling work, refused (403) when another site's page sent it."""
    sender = foreign_origin(request.scope, request.app.state.settings.cors_origins)
    if sender is not None:
        raise ApiError(403, "foreign_origin", f"requests from {sender} may not start or stop work")
    return client_address(request)


AttributionDep = Annotated[AttributionResources, Depends(get_attribution)]
JobBoardDep = Annotated[JobBoard, Depends(get_job_board)]
ClientDep = Annotated[str, Depends(client_of)]
WriterDep = Annotated[str, Depends(same_site_writer)]


async def run_queued(request: Request, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the inference queue; a ValueError from the core becomes a 422 (code
    ``layer_not_run`` when the input's forward took a branch without the layer)."""
    try:
        return await request.app.state.queue.run(fn, *args)
    except LayerNotRunError as error:
        raise ApiError(422, "layer_not_run", str(error)) from error
    except ValueError as error:
        raise ApiError(422, "invalid_parameter", str(error)) from error


def start_job(
    request: Request, board: JobBoard, kind: JobKind, client: str, compute: Callable[[Progress], T]
) -> Job:
    """Admit a job running ``compute(progress)`` on the inference queue in the background.

    Raises:
        ApiError: 429 when this client has all the jobs it may, 503 when every place is taken.
    """
    try:
        job = board.admit(kind, client)
    except JobLimitError as error:
        status = 429 if error.per_client else 503
        code = "too_many_jobs" if error.per_client else "busy"
        retry = str(request.app.state.settings.retry_after_seconds)
        raise ApiError(status, code, str(error), {"Retry-After": retry}) from error
    request.app.state.attribution_tasks.start_soon(run_job, request.app, board, job, compute)
    return job


async def run_job(
    app: FastAPI, board: JobBoard, job: Job, compute: Callable[[Progress], T]
) -> None:
    """Wait for a slot, compute, and record how the job ended (never raises)."""

    def work() -> T:
        board.start(job)
        return compute(job.progress)

    with anyio.CancelScope() as waiting:
        job.stop_waiting = waiting.cancel
        try:
            result = await app.state.queue.run(work)
        except Cancelled:
            board.finish(job, "cancelled")
        except QueueFullError as error:
            board.finish(job, "failed", code="busy", error=str(error))
        except LayerNotRunError as error:
            board.finish(job, "failed", code="layer_not_run", error=str(error))
        except ValueError as error:
            board.finish(job, "failed", code="invalid_parameter", error=str(error))
        except Exception as error:  # a job's failure must not end the lifespan's task group
            logger.exception("attribution job %s failed", job.job_id)
            board.finish(job, "failed", code="internal_error", error=type(error).__name__)
        else:
            board.finish(job, "done", result)
    if waiting.cancelled_caught and job.active:
        board.finish(job, "cancelled")


def feature_map_layer(model: LoadedModel, name: str) -> LayerInfo:
    info = model.layer_index.get(name)
    if info is None:
        raise ApiError(404, "layer_not_found", f"no layer named {name!r}")
    if len(info.output_shape) != 3:
        raise ApiError(422, "not_a_feature_map", f"layer {name!r} has no spatial output")
    return info


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def input_shape(model: LoadedModel) -> InputShape:
    channels, height, width = model.input_shape
    return InputShape(channels=channels, height=height, width=width)
