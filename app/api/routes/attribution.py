"""Where the network looks, per analysed image: Grad-CAM, saliency (vanilla and SmoothGrad),
occlusion sensitivity and the effective receptive field (trained beside randomly initialised).

Each method runs on the analysis's exact input tensor as one inference-queue job that computes the
map and encodes its PNG. What a model learned, independent of any image (feature visualization,
top-activating patches, first-layer filters), is in ``learned_features``.
"""

from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Query, Request

from app.api.attribution_deps import (
    AttributionDep,
    attribution_lifespan,
    data_url,
    input_shape,
    run_queued,
)
from app.api.deps import AnalysisDep, AnalysisLayerDep, ServiceDep, SettingsDep
from app.api.errors import ApiError
from app.api.routes.receptive_field import box_out
from app.api.schemas import error_responses
from app.api.schemas_attribution import (
    EffectiveFieldMap,
    EffectiveFieldOut,
    GradCamOut,
    OcclusionOut,
    SaliencyOut,
)
from app.core.attribution.colormap import diverging_png, overlay_png, sequential_png
from app.core.attribution.effective_rf import EffectiveReceptiveField, effective_receptive_field
from app.core.attribution.gradcam import default_cam_layer, grad_cam
from app.core.attribution.occlusion import occlusion
from app.core.attribution.resources import RANDOM_SEED
from app.core.attribution.saliency import DEFAULT_NOISE_LEVEL, SmoothGradOptions, saliency
from app.core.registry import LayerInfo, LoadedModel
from app.services.analyses import AnalysisRecord

MAX_OCCLUSION_WINDOWS = 4096
"""A 224×224 map with stride 4 (2,916 windows) is allowed; stride 1 (~50,000 forwards) is not."""
MAX_SMOOTHGRAD_SAMPLES = 64
SALIENCY_SATURATION = 0.99
"""Saliency PNGs reach full strength at the 99th percentile: raw gradients have a few extreme
pixels that would leave the rest black (the JSON's ``max`` stays the true maximum)."""

router = APIRouter(prefix="/api/v1", tags=["attribution"], lifespan=attribution_lifespan)


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


def feature_map_layer(model: LoadedModel, name: str) -> LayerInfo:
    info = model.layer_index.get(name)
    if info is None:
        raise ApiError(404, "layer_not_found", f"no layer named {name!r}")
    if len(info.output_shape) != 3:
        raise ApiError(422, "not_a_feature_map", f"layer {name!r} has no spatial output")
    return info


ClassQuery = Annotated[
    int | None, Query(ge=0, description="class to explain (default: top prediction)")
]


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
        )

    return await run_queued(request, compute)


@router.get(
    "/analyses/{analysis_id}/saliency",
    response_model=SaliencyOut,
    responses=error_responses(404, 422, 503),
)
async def saliency_map(
    request: Request,
    record: AnalysisDep,
    service: ServiceDep,
    settings: SettingsDep,
    class_index: ClassQuery = None,
    method: Literal["vanilla", "smoothgrad"] = "vanilla",
    samples: Annotated[int | None, Query(ge=1, le=MAX_SMOOTHGRAD_SAMPLES)] = None,
    noise_level: Annotated[float, Query(gt=0, le=1)] = DEFAULT_NOISE_LEVEL,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SaliencyOut:
    """Input gradient of the class score (vanilla) or its mean over noisy copies (SmoothGrad)."""
    model = service.model_of(record)
    target = checked_class(model, class_index)
    options = None
    if method == "smoothgrad":
        count = samples or settings.smoothgrad_samples
        options = SmoothGradOptions(samples=count, noise_level=noise_level, seed=seed)

    def compute() -> SaliencyOut:
        result = saliency(model.module, record.input, target, options)
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
        )

    return await run_queued(request, compute)


def occlusion_fill(model: LoadedModel) -> float:
    """The spec's occlusion fill: grey by default; black for digits, where black is the paper."""
    return model.spec.occlusion_fill


@router.get(
    "/analyses/{analysis_id}/occlusion",
    response_model=OcclusionOut,
    responses=error_responses(404, 422, 503),
)
async def occlusion_map(
    request: Request,
    record: AnalysisDep,
    service: ServiceDep,
    class_index: ClassQuery = None,
    window: Annotated[int | None, Query(ge=1, le=4096, description="default: input / 7")] = None,
    stride: Annotated[int | None, Query(ge=1, le=4096, description="default: window / 2")] = None,
) -> OcclusionOut:
    """Slide a patch over the input and map how much the class score drops (Zeiler & Fergus)."""
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

    def compute() -> OcclusionOut:
        result = occlusion(model.module, record.input, (size, size), (step, step), fill, target)
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
        )

    return await run_queued(request, compute)


def field_map(result: EffectiveReceptiveField) -> EffectiveFieldMap:
    return EffectiveFieldMap(
        activation=result.activation,
        max_gradient=float(result.gradient.max()),
        mass_in_box=result.mass_in_box,
        effective_size=result.effective_size,
        map_png=data_url(sequential_png(result.gradient.numpy())),
    )


@router.get(
    "/analyses/{analysis_id}/layers/{layer}/effective-receptive-field",
    response_model=EffectiveFieldOut,
    responses=error_responses(404, 422, 503),
)
async def effective_field(
    request: Request,
    record: AnalysisDep,
    layer: AnalysisLayerDep,
    service: ServiceDep,
    resources: AttributionDep,
    y: Annotated[int | None, Query(ge=0, description="unit row (default: centre)")] = None,
    x: Annotated[int | None, Query(ge=0, description="unit column (default: centre)")] = None,
    channel: Annotated[int | None, Query(ge=0, description="default: all channels")] = None,
) -> EffectiveFieldOut:
    """|∂unit/∂input| beside the theoretical receptive field, trained and randomly initialised."""
    model = service.model_of(record)
    info = feature_map_layer(model, layer.name)
    rf = info.receptive_field.rf
    if rf is None:
        raise ApiError(422, "receptive_field_unavailable", info.receptive_field.diagnostic or "")
    _, map_h, map_w = info.output_shape
    unit_y = map_h // 2 if y is None else y
    unit_x = map_w // 2 if x is None else x

    def compute() -> EffectiveFieldOut:
        args = (record.input, info.name, rf, unit_y, unit_x, channel)
        trained = effective_receptive_field(model.module, *args)
        random = effective_receptive_field(resources.random_twin(model), *args)
        return EffectiveFieldOut(
            analysis_id=record.analysis_id,
            layer=info.name,
            y=unit_y,
            x=unit_x,
            channel=channel,
            box=box_out(trained.box),
            clipped=box_out(trained.clipped),
            size=list(rf.size),
            trained=field_map(trained),
            random=field_map(random),
            random_seed=RANDOM_SEED,
            input=input_shape(model),
        )

    return await run_queued(request, compute)
