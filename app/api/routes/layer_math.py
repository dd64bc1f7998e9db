"""A conv layer as one matrix product (im2col), folded with its batch norm, and the model's
depthwise-separable pairs against full convolutions — the network's own numbers."""

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AnalysisDep, AnalysisLayerDep, ModelDep, ServiceDep
from app.api.errors import ApiError
from app.api.http_cache import AnalysisCacheDep
from app.api.schemas import error_responses
from app.api.schemas_layer_math import FoldedOut, Im2colOut, SeparableOut, SeparablePairOut
from app.core.layer_math import fold_batchnorm, im2col_unit, separable_pairs
from app.core.unit_math import UnitError
from app.services.analyses import AnalysisRecord, AnalysisService

router = APIRouter(tags=["layer arithmetic"])

UnitIndex = Annotated[int, Query(ge=0, le=1_000_000)]
UNIT = "/api/v1/analyses/{analysis_id}/layers/{layer}"


async def _unit_view(
    record: AnalysisRecord, layer: str, service: AnalysisService, view: Callable, unit: tuple
) -> dict:
    try:
        result = await service.layer_math(record, view, layer, *unit)
    except UnitError as error:
        raise ApiError(422, "not_applicable", str(error)) from error
    return {"analysis_id": record.analysis_id, **asdict(result)}


@router.get(f"{UNIT}/im2col", response_model=Im2colOut, responses=error_responses(404, 422, 503))
async def im2col(
    record: AnalysisDep,
    layer: AnalysisLayerDep,
    service: ServiceDep,
    _cache: AnalysisCacheDep,
    channel: UnitIndex = 0,
    y: UnitIndex = 0,
    x: UnitIndex = 0,
) -> Im2colOut:
    """The conv layer as unfolded input × filter matrix: this unit's row, its filter's column."""
    return Im2colOut(**await _unit_view(record, layer.name, service, im2col_unit, (channel, y, x)))


@router.get(f"{UNIT}/folded", response_model=FoldedOut, responses=error_responses(404, 422, 503))
async def folded(
    record: AnalysisDep,
    layer: AnalysisLayerDep,
    service: ServiceDep,
    _cache: AnalysisCacheDep,
    channel: UnitIndex = 0,
    y: UnitIndex = 0,
    x: UnitIndex = 0,
) -> FoldedOut:
    """The conv's filter folded with the batch norm after it, and the unit computed both ways."""
    unit = (channel, y, x)
    return FoldedOut(**await _unit_view(record, layer.name, service, fold_batchnorm, unit))


@router.get(
    "/api/v1/models/{model_id}/separable",
    response_model=SeparableOut,
    responses=error_responses(404),
)
async def separable(model: ModelDep) -> SeparableOut:
    """Each depthwise conv + the pointwise conv after it vs one full conv of the same shapes."""
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    return SeparableOut(
        model_id=model.spec.id,
        pairs=[
            SeparablePairOut(**{**asdict(pair), "between": list(pair.between)})
            for pair in separable_pairs(model.program, shapes)
        ],
    )
