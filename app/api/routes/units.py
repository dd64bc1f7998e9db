"""One unit's arithmetic, redone from the layer's real input (any layer kind, any padding)."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AnalysisDep, AnalysisLayerDep, ServiceDep
from app.api.errors import ApiError
from app.api.http_cache import AnalysisCacheDep
from app.api.schemas import UnitMathOut, UnitOperandOut, error_responses
from app.core.unit_math import UnitError

router = APIRouter(prefix="/api/v1/analyses/{analysis_id}/layers/{layer}", tags=["analyses"])

UnitIndex = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/unit", response_model=UnitMathOut, responses=error_responses(404, 422, 503))
async def unit_arithmetic(
    record: AnalysisDep,
    layer: AnalysisLayerDep,
    service: ServiceDep,
    _cache: AnalysisCacheDep,
    channel: Annotated[int, Query(ge=0, le=1_000_000, description="channel (a vector: index)")],
    y: UnitIndex = 0,
    x: UnitIndex = 0,
) -> UnitMathOut:
    """The numbers behind one unit: a conv's window × filter + bias through the layer's own
    padding, a pool's window, an elementwise step with its formula, a residual add's operands, a
    gate, a concatenation's source — and the value the network computed beside them."""
    unit = (channel, y, x) if len(layer.output_shape) == 3 else (channel,)
    try:
        math = await service.unit_math(record, layer.name, unit)
    except UnitError as error:
        raise ApiError(422, "invalid_unit", str(error)) from error
    return UnitMathOut(
        analysis_id=record.analysis_id,
        layer=math.layer,
        kind=math.kind,
        type=math.type,
        unit=list(math.unit),
        value=math.value,
        recomputed=math.recomputed,
        difference=math.difference,
        inputs=math.inputs,
        weights=math.weights,
        products=math.products,
        bias=math.bias,
        shape=list(math.shape),
        positions=[list(p) for p in math.positions],
        padded=math.padded,
        padding_mode=math.padding_mode,
        rule=math.rule,
        formula=math.formula,
        parameters={k: v for k, v in math.parameters.items() if isinstance(v, float | int | str)},
        operands=[UnitOperandOut(**operand) for operand in math.operands],
        note=math.note,
        source=math.source,
    )
