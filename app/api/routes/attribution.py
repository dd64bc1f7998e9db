"""Where the network looks, per analysed image: Grad-CAM, saliency (vanilla and SmoothGrad),
occlusion sensitivity and the effective receptive field (trained beside randomly initialised).

Each method runs on the analysis's exact input tensor as one inference-queue job that computes the
map and encodes its PNG. Saliency and occlusion are also offered as jobs with progress and cancel
(``attribution_jobs``): one dependency per method (``SaliencyWork``, ``OcclusionWork``) reads and
checks the request and returns the computation, so both ways run exactly the same code. What a
model learned, independent of any image (feature visualization, top-activating patches,
first-layer filters), is in ``learned_features``.
"""

from collections.abc import Callable
from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.api.attribution_deps import (
    JobBoardDep,
    WriterDep,
    attribution_lifespan,
    data_url,
    feature_map_layer,
    input_shape,
    run_queued,
    start_job,
)
from app.api.deps import AnalysisDep, ServiceDep, SettingsDep
from app.api.errors import ApiError, not_found
from app.api.routes import unit_attribution
from app.api.schemas import error_responses
from app.api.schemas_attribution import (
    AttributionJobOut,
    GradCamOut,
    JobErrorOut,
    OcclusionOut,
    SaliencyOut,
)
from app.core.attribution.colormap import (
    diverging_legend_png,
    diverging_png,
    overlay_png,
    sequential_png,
)
from app.core.attribution.gradcam import default_cam_layer, grad_cam
from app.core.attribution.jobs import Job, JobBoard
from app.core.attribution.map_stats import blank_mask, heat_share, speckle
from app.core.attribution.occlusion import occlusion
from app.core.attribution.progress import Progress
from app.core.attribution.saliency import DEFAULT_NOISE_LEVEL, SmoothGradOptions, saliency
from app.core.registry import LoadedModel
from app.services.analyses import AnalysisRecord

MAX_OCCLUSION_WINDOWS = 4096
"""A 224×224 map with stride 4 (2,916 windows) is allowed; stride 1 (~50,000 forwards) is not."""
MAX_SMOOTHGRAD_SAMPLES = 64
SALIENCY_SATURATION = 0.99
"""Saliency PNGs reach full strength at the 99th percentile: raw gradients have a few extreme
pixels that would leave the rest black (the JSON's ``max`` stays the true maximum)."""

router = APIRouter(prefix="/api/v1", tags=["attribution"], lifespan=attribution_lifespan)
router.include_router(unit_attribution.router)


def checked_class(model: LoadedModel, class_index: int | None) -> int | None:
    if class_index is not None and class_index >= len(model.labels):
        raise ApiError(
            422, "class_out_of_range", f"class_index must be in 0..{len(model.labels) - 1}"
        )
    return class_index


def cam_layer_or_422(model: LoadedModel, record: AnalysisRecord) -> str:
    """The default Grad-CAM layer among those this input reached, or a clear 422."""
    layer = default_cam_layer(model, {stats.name for stats in record.layers})
    if layer is None:
        raise ApiError(422, "no_feature_map", "no spatial feature-map layer ran for this input")
    return layer


ClassQuery = Annotated[
    int | None, Query(ge=0, description="class to explain (default: top prediction)")
]
SaliencyWork = Callable[[Progress], SaliencyOut]
OcclusionWork = Callable[[Progress], OcclusionOut]


@router.get(
    "/analyses/{analysis_id}/grad-cam",
    response_model=GradCamOut,
    responses=error_responses(404, 422, 503),
)
async def grad_cam_map(
    request: Request,
    record: AnalysisDep,
    service: ServiceDep,
    class_index: ClassQuery = None,
    layer: Annotated[str | None, Query(max_length=256, description="default: last map")] = None,
) -> GradCamOut:
    """Grad-CAM: which regions of the input a layer's evidence for the class comes from."""
    model = service.model_of(record)
    info = feature_map_layer(model, layer or cam_layer_or_422(model, record))
    target = checked_class(model, class_index)

    def compute() -> GradCamOut:
        field = info.receptive_field.rf
        result = grad_cam(model.module, record.input, info.name, target, field)
        pre = model.spec.preprocess
        blank = blank_mask(record.input, pre.mean, pre.std, model.spec.occlusion_fill)
        return GradCamOut(
            analysis_id=record.analysis_id,
            layer=info.name,
            class_index=result.class_index,
            label=model.labels[result.class_index],
            score=result.score,
            cam=result.cam.tolist(),
            cam_max=float(result.cam.max()),
            overlay_png=data_url(overlay_png(result.upsampled.numpy())),
            input=input_shape(model),
            field_size=None if field is None else list(field.size),
            blank_fraction=float(blank.double().mean()),
            heat_on_blank=heat_share(result.upsampled, blank),
        )

    return await run_queued(request, compute)


async def saliency_work(
    record: AnalysisDep,
    service: ServiceDep,
    settings: SettingsDep,
    class_index: ClassQuery = None,
    method: Literal["vanilla", "smoothgrad"] = "vanilla",
    samples: Annotated[int | None, Query(ge=1, le=MAX_SMOOTHGRAD_SAMPLES)] = None,
    noise_level: Annotated[float, Query(gt=0, le=1)] = DEFAULT_NOISE_LEVEL,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SaliencyWork:
    """The checked saliency request, as the computation that answers it."""
    model = service.model_of(record)
    target = checked_class(model, class_index)
    options = None
    if method == "smoothgrad":
        count = samples or settings.smoothgrad_samples
        options = SmoothGradOptions(samples=count, noise_level=noise_level, seed=seed)

    def compute(progress: Progress) -> SaliencyOut:
        result = saliency(model.module, record.input, target, options, progress)
        plain = None
        if options is not None:  # the plain gradient's speckle, which SmoothGrad should lower
            plain_map = saliency(model.module, record.input, target).map.numpy()
            plain = speckle(plain_map, SALIENCY_SATURATION)
        return SaliencyOut(
            analysis_id=record.analysis_id,
            class_index=result.class_index,
            label=model.labels[result.class_index],
            score=result.score,
            method=method,
            samples=result.samples,
            noise_std=result.noise_std,
            seed=seed,
            max=float(result.map.max()),
            map_png=data_url(sequential_png(result.map.numpy(), SALIENCY_SATURATION)),
            speckle=speckle(result.map.numpy(), SALIENCY_SATURATION),
            plain_speckle=plain,
        )

    return compute


SaliencyWorkDep = Annotated[SaliencyWork, Depends(saliency_work)]


@router.get(
    "/analyses/{analysis_id}/saliency",
    response_model=SaliencyOut,
    responses=error_responses(404, 422, 503),
)
async def saliency_map(request: Request, work: SaliencyWorkDep) -> SaliencyOut:
    """Input gradient of the class score (vanilla) or its mean over noisy copies (SmoothGrad)."""
    return await run_queued(request, work, Progress())


def occlusion_fill(model: LoadedModel) -> float:
    """The spec's occlusion fill: grey by default; black for digits, where black is the paper."""
    return model.spec.occlusion_fill


async def occlusion_work(
    record: AnalysisDep,
    service: ServiceDep,
    class_index: ClassQuery = None,
    window: Annotated[int | None, Query(ge=1, le=4096, description="default: input / 7")] = None,
    stride: Annotated[int | None, Query(ge=1, le=4096, description="default: window / 2")] = None,
) -> OcclusionWork:
    """The checked occlusion request, as the computation that answers it."""
    model = service.model_of(record)
    target = checked_class(model, class_index)
    _, height, width = model.input_shape
    size = window or max(1, min(height, width) // 7)
    step = stride or max(1, size // 2)
    if size > min(height, width) or step > size:
        raise ApiError(
            422, "invalid_window", f"need 1 ≤ stride ≤ window ≤ {min(height, width)} pixels"
        )
    windows = ((height - size + step - 1) // step + 1) * ((width - size + step - 1) // step + 1)
    if windows > MAX_OCCLUSION_WINDOWS:
        raise ApiError(
            422,
            "too_many_windows",
            f"{windows} windows; at most {MAX_OCCLUSION_WINDOWS} (raise the stride)",
        )
    fill_pixel = occlusion_fill(model)
    pre = model.spec.preprocess
    fill = (torch.full((len(pre.mean),), fill_pixel) - torch.tensor(pre.mean)) / torch.tensor(
        pre.std
    )

    def compute(progress: Progress) -> OcclusionOut:
        result = occlusion(
            model.module, record.input, (size, size), (step, step), fill, target, progress=progress
        )
        return OcclusionOut(
            analysis_id=record.analysis_id,
            class_index=result.class_index,
            label=model.labels[result.class_index],
            score=result.score,
            window=[size, size],
            stride=[step, step],
            fill_pixel=fill_pixel,
            rows=result.rows,
            cols=result.cols,
            drops=result.drops.tolist(),
            max_drop=float(result.drops.max()),
            min_drop=float(result.drops.min()),
            map_png=data_url(diverging_png(result.pixel_map.numpy())),
            legend_png=data_url(diverging_legend_png()),
        )

    return compute


OcclusionWorkDep = Annotated[OcclusionWork, Depends(occlusion_work)]


@router.get(
    "/analyses/{analysis_id}/occlusion",
    response_model=OcclusionOut,
    responses=error_responses(404, 422, 503),
)
async def occlusion_map(request: Request, work: OcclusionWorkDep) -> OcclusionOut:
    """Slide a patch over the input and map how much the class score drops (Zeiler & Fergus)."""
    return await run_queued(request, work, Progress())


def job_out(job: Job) -> AttributionJobOut:
    progress = job.progress
    error = JobErrorOut(code=job.error_code, message=job.error) if job.status == "failed" else None
    return AttributionJobOut(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,
        done=progress.done,
        total=progress.total,
        fraction=progress.fraction,
        url=f"/api/v1/attribution-jobs/{job.job_id}",
        result=job.result if job.status == "done" else None,  # type: ignore[arg-type]
        error=error,
    )


def accepted(job: Job, response: Response) -> AttributionJobOut:
    body = job_out(job)
    response.headers["Location"] = body.url
    return body


JOB_ERRORS = error_responses(403, 404, 422, 429, 503)


@router.post(
    "/analyses/{analysis_id}/saliency/jobs",
    status_code=202,
    response_model=AttributionJobOut,
    responses=JOB_ERRORS,
)
async def saliency_job(
    request: Request,
    response: Response,
    board: JobBoardDep,
    client: WriterDep,
    work: SaliencyWorkDep,
) -> AttributionJobOut:
    """Start the saliency map as a job (same parameters as GET …/saliency); poll its ``url``
    for progress (noisy copies done) and the result, DELETE it to cancel."""
    return accepted(start_job(request, board, "saliency", client, work), response)


@router.post(
    "/analyses/{analysis_id}/occlusion/jobs",
    status_code=202,
    response_model=AttributionJobOut,
    responses=JOB_ERRORS,
)
async def occlusion_job(
    request: Request,
    response: Response,
    board: JobBoardDep,
    client: WriterDep,
    work: OcclusionWorkDep,
) -> AttributionJobOut:
    """Start the occlusion map as a job (same parameters as GET …/occlusion); poll its ``url``
    for progress (window positions done) and the result, DELETE it to cancel."""
    return accepted(start_job(request, board, "occlusion", client, work), response)


JobIdPath = Annotated[str, Path(min_length=16, max_length=16, pattern="^[0-9a-f]{16}$")]


def known_job(board: JobBoard, job_id: str) -> Job:
    job = board.get(job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


@router.get(
    "/attribution-jobs/{job_id}",
    response_model=AttributionJobOut,
    responses=error_responses(404, 422),
)
async def attribution_job(board: JobBoardDep, job_id: JobIdPath) -> AttributionJobOut:
    """A job's status and progress; its result once done. Polling keeps it alive: a job nobody
    asked about for a while is cancelled."""
    return job_out(known_job(board, job_id))


@router.delete(
    "/attribution-jobs/{job_id}",
    response_model=AttributionJobOut,
    responses=error_responses(403, 404, 422),
)
async def cancel_attribution_job(
    board: JobBoardDep, client: WriterDep, job_id: JobIdPath
) -> AttributionJobOut:
    """Cancel a job: it leaves the queue, or stops before its next batch and frees its slot.
    Only the client that started it may; a finished job is left as it is."""
    job = known_job(board, job_id)
    if job.client != client:
        raise ApiError(403, "not_your_job", "only the client that started a job may cancel it")
    board.cancel(job)
    return job_out(job)
