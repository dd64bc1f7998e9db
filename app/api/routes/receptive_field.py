"""Which input pixels a unit sees: its receptive-field box in model-input coordinates."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ModelDep, ModelLayerDep
from app.api.errors import ApiError
from app.api.schemas import BoxOut, InputShape, ReceptiveFieldBoxOut, error_responses
from app.core.receptive_field import (
    Box,
    ReceptiveField,
    clip_box,
    receptive_field_box,
    receptive_field_json,
)

router = APIRouter(prefix="/api/v1/models/{model_id}/layers/{layer}", tags=["receptive fields"])


def box_out(box: Box) -> BoxOut:
    return BoxOut(top=box.top, left=box.left, bottom=box.bottom, right=box.right)


def field_numbers(rf: ReceptiveField) -> dict[str, object]:
    """The numbers of a receptive field, as both the model card and the unit box report them
    (``receptive_field_json``, with ``seen`` as a box object)."""
    return {**receptive_field_json(rf), "seen": box_out(rf.seen) if rf.seen is not None else None}


@router.get(
    "/receptive-field", response_model=ReceptiveFieldBoxOut, responses=error_responses(404, 422)
)
async def unit_receptive_field(
    model: ModelDep,
    layer: ModelLayerDep,
    y: Annotated[int, Query(ge=0, description="unit row in the layer's output")] = 0,
    x: Annotated[int, Query(ge=0, description="unit column in the layer's output")] = 0,
) -> ReceptiveFieldBoxOut:
    """Inclusive input-pixel box of unit (y, x); `box` may extend past the image, `clipped` does not."""
    field = layer.receptive_field
    if field.rf is None:
        raise ApiError(422, "receptive_field_unavailable", field.diagnostic or "not computable")
    shape = layer.output_shape
    height, width = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
    if y >= height or x >= width:
        raise ApiError(
            422,
            "unit_out_of_range",
            f"layer {layer.name!r} has units y 0..{height - 1}, x 0..{width - 1}",
        )
    channels, in_h, in_w = model.input_shape
    box = receptive_field_box(field.rf, y, x, (in_h, in_w))
    rf = field.rf
    return ReceptiveFieldBoxOut(
        model_id=model.spec.id,
        layer=layer.name,
        y=y,
        x=x,
        box=box_out(box),
        clipped=box_out(clip_box(box, in_h, in_w)),
        **field_numbers(rf),
        input=InputShape(channels=channels, height=in_h, width=in_w),
    )
