"""What a model learned, independent of any upload: feature visualization (activation
maximization), the top-activating held-out patches, and trained vs random first-layer filters.

Feature visualization never enters the inference queue: ``AttributionResources`` runs it on its
own background worker, the route answers 202 + Retry-After (with the steps done so far) until the
image is on disk, and from then on it is served from the disk cache (``convlens feature-vis`` can
fill it ahead of time). It is bounded: steps by ``feature_vis_max_steps``, jobs per client and in
total, the cache in bytes; DELETE withdraws a client's request and cancels the job when nobody else
waits for it.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from app.api.attribution_deps import AttributionDep, ClientDep, WriterDep, run_queued
from app.api.deps import ModelDep, ModelLayerDep, SettingsDep
from app.api.errors import ApiError
from app.api.routes.receptive_field import box_out
from app.api.schemas import AtlasOut, error_responses
from app.api.schemas_attribution import (
    FeatureVisOut,
    FilterBankOut,
    FirstLayerFiltersOut,
    TopPatchesOut,
    TopPatchOut,
)
from app.core.attribution.feature_vis import FeatureVisOptions, objective_layer
from app.core.attribution.feature_vis_store import FeatureVisBusyError, FeatureVisFailedError
from app.core.attribution.progress import Progress
from app.core.attribution.random_filters import first_conv_layer
from app.core.attribution.resources import (
    RANDOM_SEED,
    AttributionResources,
    model_feature_vis_key,
)
from app.core.attribution.top_patches import LayerPatches, TopPatchesError
from app.core.encode import grid_layout, png_bytes, tile
from app.core.filters import FilterBank
from app.core.receptive_field import receptive_field_box
from app.core.registry import LayerInfo, LoadedModel

FEATURE_VIS_RETRY_SECONDS = 1
"""Polls this often show the steps done move (a visualization takes seconds)."""
FEATURE_VIS_MAX_STEPS = 256
"""The API's ceiling; ``feature_vis_max_steps`` may set a lower one."""
REVALIDATE_HOURLY = {"Cache-Control": "public, max-age=3600"}
"""These images change when weights or shipped files change, under the same URL."""

router = APIRouter(prefix="/api/v1/models/{model_id}", tags=["learned features"])

ChannelPath = Annotated[int, Path(ge=0, le=1_000_000)]
StepsQuery = Annotated[int, Query(ge=1, le=FEATURE_VIS_MAX_STEPS, description="optimisation steps")]


def channel_url(model: LoadedModel, layer: LayerInfo, channel: int) -> str:
    return f"/api/v1/models/{model.spec.id}/layers/{layer.name}/channels/{channel}"


def checked_channel(layer: LayerInfo, channel: int) -> int:
    count = layer.output_shape[0]
    if len(layer.output_shape) not in (1, 3) or channel >= count:
        raise ApiError(
            404, "channel_not_found", f"layer {layer.name!r} has channels 0..{count - 1}"
        )
    return channel


async def feature_vis_options(
    settings: SettingsDep, steps: StepsQuery = FeatureVisOptions.steps
) -> FeatureVisOptions:
    if steps > settings.feature_vis_max_steps:
        raise ApiError(
            422, "too_many_steps", f"at most {settings.feature_vis_max_steps} steps on this server"
        )
    return FeatureVisOptions(steps=steps)


FeatureVisOptionsDep = Annotated[FeatureVisOptions, Depends(feature_vis_options)]


def feature_vis_out(
    model: LoadedModel, layer: LayerInfo, channel: int, options: FeatureVisOptions
) -> FeatureVisOut:
    return FeatureVisOut(
        model_id=model.spec.id,
        layer=layer.name,
        channel=channel,
        status="computing",
        steps=options.steps,
        measured_before_relu=objective_layer(model.program, layer.name)[1],
    )


@router.get(
    "/layers/{layer}/channels/{channel}/feature-vis",
    response_model=FeatureVisOut,
    responses={202: {"model": FeatureVisOut}, **error_responses(404, 422, 429, 500, 503)},
)
async def feature_vis(
    resources: AttributionDep,
    model: ModelDep,
    layer: ModelLayerDep,
    channel: ChannelPath,
    options: FeatureVisOptionsDep,
    client: ClientDep,
) -> FeatureVisOut | JSONResponse:
    """The input that maximises a channel (activation maximization). 202 while it is computed
    in the background, with the steps done (poll again after Retry-After); then cached on disk
    for everyone."""
    checked_channel(layer, channel)
    try:
        stored = resources.feature_vis(model, layer.name, channel, options, client)
    except FeatureVisBusyError as error:
        status, code = (429, "too_many_jobs") if error.per_client else (503, "busy")
        headers = {"Retry-After": str(FEATURE_VIS_RETRY_SECONDS * 10)}
        raise ApiError(status, code, str(error), headers) from error
    except FeatureVisFailedError as error:
        raise ApiError(422 if error.invalid else 500, "feature_vis_failed", str(error)) from error
    out = feature_vis_out(model, layer, channel, options)
    if isinstance(stored, Progress):
        headers = {"Retry-After": str(FEATURE_VIS_RETRY_SECONDS)}
        body = out.model_copy(update={"done": stored.done})
        return JSONResponse(body.model_dump(), status_code=202, headers=headers)
    image_url = f"{channel_url(model, layer, channel)}/feature-vis.png?steps={options.steps}"
    return out.model_copy(
        update={
            "status": "done",
            "done": options.steps,
            "image_url": image_url,
            "start_activation": stored.metadata["start_activation"],
            "final_activation": stored.metadata["final_activation"],
        }
    )


@router.delete(
    "/layers/{layer}/channels/{channel}/feature-vis",
    response_model=FeatureVisOut,
    responses=error_responses(403, 404, 422),
)
async def cancel_feature_vis(
    resources: AttributionDep,
    model: ModelDep,
    layer: ModelLayerDep,
    channel: ChannelPath,
    options: FeatureVisOptionsDep,
    client: WriterDep,
) -> FeatureVisOut:
    """Withdraw this client's request: the job is cancelled (it stops before its next step) when
    nobody else waits for it, and the answer says "cancelled"; otherwise "computing" (others
    still wait), or "done" when it finished first."""
    checked_channel(layer, channel)
    key = model_feature_vis_key(model, layer.name, channel, options)
    out = feature_vis_out(model, layer, channel, options)
    if resources.jobs.store.get(key) is not None:
        return out.model_copy(update={"status": "done", "done": options.steps})
    if not resources.jobs.is_pending(key):
        raise ApiError(
            404, "feature_vis_not_running", "no feature visualization job for this channel"
        )
    cancelled = resources.jobs.withdraw(key, client)
    return out.model_copy(update={"status": "cancelled" if cancelled else "computing"})


@router.get(
    "/layers/{layer}/channels/{channel}/feature-vis.png",
    response_class=Response,
    responses=error_responses(404),
)
async def feature_vis_png(
    resources: AttributionDep,
    model: ModelDep,
    layer: ModelLayerDep,
    channel: ChannelPath,
    options: FeatureVisOptionsDep,
) -> Response:
    """The finished visualization (404 ``feature_vis_not_ready`` until the JSON says done)."""
    checked_channel(layer, channel)
    key = model_feature_vis_key(model, layer.name, channel, options)
    stored = resources.jobs.store.get(key)
    if stored is None:
        raise ApiError(404, "feature_vis_not_ready", "not computed yet: GET …/feature-vis first")
    return Response(stored.png, media_type="image/png", headers=REVALIDATE_HOURLY)


def layer_patches(
    resources: AttributionResources, model: LoadedModel, layer: LayerInfo
) -> LayerPatches:
    try:
        patch_set = resources.top_patches(model)
    except TopPatchesError as error:
        # The error names a server path; clients only learn that none are shipped.
        raise ApiError(
            404, "top_patches_unavailable", f"no top-activating patches ship with {model.spec.id!r}"
        ) from error
    if layer.name not in patch_set.layers or layer.receptive_field.rf is None:
        raise ApiError(404, "top_patches_unavailable", f"none shipped for layer {layer.name!r}")
    return patch_set.layers[layer.name]


@router.get(
    "/layers/{layer}/channels/{channel}/top-patches",
    response_model=TopPatchesOut,
    responses=error_responses(404),
)
async def top_patches(
    resources: AttributionDep, model: ModelDep, layer: ModelLayerDep, channel: ChannelPath
) -> TopPatchesOut:
    """The 9 held-out digits that excite the channel most, cropped to the unit's field."""
    patches = layer_patches(resources, model, layer)
    checked_channel(layer, channel)
    rf = layer.receptive_field.rf
    assert rf is not None  # layer_patches only returns layers with a receptive field
    _, height, width = model.input_shape
    items = []
    for rank, (source, value) in enumerate(
        zip(patches.sources[channel], patches.activations[channel], strict=True)
    ):
        digit, label, y, x = (int(v) for v in source)
        box = receptive_field_box(rf, y, x, (height, width))
        items.append(
            TopPatchOut(
                rank=rank,
                digit_index=digit,
                label=label,
                y=y,
                x=x,
                activation=float(value),
                box=box_out(box),
            )
        )
    return TopPatchesOut(
        model_id=model.spec.id,
        layer=layer.name,
        channel=channel,
        patch_size=list(patches.patches.shape[2:]),
        patches=items,
        grid_url=f"{channel_url(model, layer, channel)}/top-patches.png",
    )


@router.get(
    "/layers/{layer}/channels/{channel}/top-patches.png",
    response_class=Response,
    responses=error_responses(404),
)
async def top_patches_png(
    resources: AttributionDep, model: ModelDep, layer: ModelLayerDep, channel: ChannelPath
) -> Response:
    """The top patches as a 3×3 grid, best first, row by row."""
    patches = layer_patches(resources, model, layer)
    checked_channel(layer, channel)
    tiles = patches.patches[channel]
    layout = grid_layout(len(tiles), tiles.shape[1], tiles.shape[2])
    png = png_bytes(tile(tiles, layout, fill=255))
    return Response(png, media_type="image/png", headers=REVALIDATE_HOURLY)


def bank_out(bank: FilterBank, correlation: float, url: str) -> FilterBankOut:
    return FilterBankOut(
        neighbour_correlation=correlation,
        scaling=bank.atlas.scaling,
        minimums=bank.atlas.minimums,
        maximums=bank.atlas.maximums,
        atlas=AtlasOut(**bank.atlas.layout.to_json()),
        atlas_url=url,
    )


async def first_conv_or_422(model: ModelDep) -> str:
    try:
        return first_conv_layer(model)
    except ValueError as error:
        raise ApiError(422, "no_conv_layer", str(error)) from error


FirstConvDep = Annotated[str, Depends(first_conv_or_422)]


@router.get(
    "/first-layer-filters",
    response_model=FirstLayerFiltersOut,
    responses=error_responses(404, 422, 503),
)
async def first_layer_filters(
    request: Request, resources: AttributionDep, model: ModelDep, conv: FirstConvDep
) -> FirstLayerFiltersOut:
    """The first conv layer's learned filters beside those of a randomly initialised twin."""
    comparison = await run_queued(request, resources.first_layer_filters, model, conv)
    base = f"/api/v1/models/{model.spec.id}"
    return FirstLayerFiltersOut(
        verdict=comparison.verdict,
        model_id=model.spec.id,
        layer=comparison.layer,
        shape=list(comparison.trained.weight.shape),
        random_seed=RANDOM_SEED,
        trained=bank_out(
            comparison.trained,
            comparison.trained_neighbour_correlation,
            f"{base}/layers/{comparison.layer}/filters.png",
        ),
        random=bank_out(
            comparison.random,
            comparison.random_neighbour_correlation,
            f"{base}/first-layer-filters/random.png",
        ),
    )


@router.get(
    "/first-layer-filters/random.png",
    response_class=Response,
    responses=error_responses(404, 422, 503),
)
async def random_filters_png(
    request: Request, resources: AttributionDep, model: ModelDep, conv: FirstConvDep
) -> Response:
    """The random twin's first-layer filters, drawn exactly like the trained ones."""
    comparison = await run_queued(request, resources.first_layer_filters, model, conv)
    return Response(comparison.random.atlas.png, media_type="image/png", headers=REVALIDATE_HOURLY)
