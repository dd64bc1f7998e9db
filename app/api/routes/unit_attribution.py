"""What one unit or channel of the selected layer does with this analysis's image: its effective
receptive field (trained beside randomly initialised) and each channel's mean response.

Included by the attribution router (``attribution.router``), so it shares its lifespan.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.api.attribution_deps import (
    AttributionDep,
    data_url,
    feature_map_layer,
    input_shape,
    run_queued,
)
from app.api.deps import AnalysisDep, AnalysisLayerDep, ServiceDep
from app.api.errors import ApiError
from app.api.routes.receptive_field import box_out
from app.api.schemas import error_responses
from app.api.schemas_attribution import ChannelMeansOut, EffectiveFieldMap, EffectiveFieldOut
from app.core.attribution.colormap import sequential_png
from app.core.attribution.effective_rf import EffectiveReceptiveField, effective_receptive_field
from app.core.attribution.resources import RANDOM_SEED

router = APIRouter(tags=["attribution"])
"""Paths are under ``/api/v1``: the attribution router, which carries that prefix, includes it."""


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


@router.get(
    "/analyses/{analysis_id}/layers/{layer}/channel-means",
    response_model=ChannelMeansOut,
    responses=error_responses(404, 422, 503),
)
async def channel_means(
    record: AnalysisDep, layer: AnalysisLayerDep, service: ServiceDep
) -> ChannelMeansOut:
    """Each channel's mean activation on this input, and the strongest channel: the one whose
    feature visualization the page offers first (it responds to this image)."""
    if len(layer.output_shape) not in (1, 3):
        raise ApiError(422, "not_a_feature_map", f"layer {layer.name!r} has no channels")
    if layer.name not in {stats.name for stats in record.layers}:
        raise ApiError(422, "layer_not_run", f"layer {layer.name!r} did not run for this input")
    activation = (await service.activation(record, layer.name)).float()
    means = activation.mean(dim=(1, 2)) if activation.ndim == 3 else activation
    return ChannelMeansOut(
        analysis_id=record.analysis_id,
        layer=layer.name,
        means=means.tolist(),
        strongest=int(means.argmax()),
    )
