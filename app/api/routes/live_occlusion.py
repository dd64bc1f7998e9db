"""Live occlusion: the predictions while a student drags a grey square over the image.

Each request is one square position. The image's clean forward is kept per analysis, and only
what the square changes is recomputed (the same exact local path as the occlusion map), so a
drag gets many updates a second; every answer equals a full forward of the occluded image.
"""

from typing import Annotated

import torch
from fastapi import APIRouter, Query, Request

from app.api.attribution_deps import AttributionDep, run_queued
from app.api.deps import AnalysisDep, ServiceDep
from app.api.routes.analyses import predictions_out
from app.api.routes.attribution import ClassQuery, checked_class, occlusion_fill
from app.api.schemas import error_responses
from app.api.schemas_attribution import LiveOcclusionOut
from app.core.analysis import top_predictions
from app.core.attribution.occlusion import occluded_logits

router = APIRouter(prefix="/api/v1/analyses/{analysis_id}", tags=["attribution"])

Position = Annotated[int, Query(ge=0, le=4095, description="the square's top-left, input pixels")]


@router.get(
    "/occlusion/live", response_model=LiveOcclusionOut, responses=error_responses(404, 422, 503)
)
async def live_occlusion(
    request: Request,
    record: AnalysisDep,
    service: ServiceDep,
    resources: AttributionDep,
    top: Position,
    left: Position,
    size: Annotated[int, Query(ge=1, le=4096, description="side of the square")],
    class_index: ClassQuery = None,
) -> LiveOcclusionOut:
    """Top-5 and one class's score with a grey square at (top, left), cut at the image edge."""
    model = service.model_of(record)
    target = checked_class(model, class_index)
    pre = model.spec.preprocess
    fill = (torch.full((pre.channels,), occlusion_fill(model)) - torch.tensor(pre.mean)) / (
        torch.tensor(pre.std)
    )

    def compute() -> LiveOcclusionOut:
        live = resources.live_occlusion(model, record.analysis_id, record.input)
        logits = occluded_logits(live, top, left, size, fill).float().cpu()
        clean = live.logits[0].float().cpu()
        index = int(clean.argmax()) if target is None else target
        return LiveOcclusionOut(
            analysis_id=record.analysis_id,
            top=top,
            left=left,
            size=size,
            class_index=index,
            label=model.labels[index],
            score=float(logits[index]),
            clean_score=float(clean[index]),
            predictions=predictions_out(top_predictions(logits, model.labels, 5)),
        )

    return await run_queued(request, compute)
