"""HTML pages, rendered from the same data the JSON API serves."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from app.api.deps import RegistryDep, ServiceDep
from app.api.errors import not_found
from app.api.routes.models import model_summary
from app.core.registry import ModelRegistry
from app.paths import STATIC_DIR
from app.services.analyses import AnalysisNotFoundError

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, registry: RegistryDep) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, "index.html", {"models": model_summaries(registry)}
    )


def model_summaries(registry: ModelRegistry) -> list[dict[str, object]]:
    return [model_summary(model).model_dump() for model in registry]


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """The pages link /static/favicon.svg; this answers clients that ask the conventional path."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


def missing_page(request: Request, kind: str, name: str) -> HTMLResponse:
    """The friendly 404 page for a browser: what is missing (`kind`: analysis, lesson or network),
    why that happens and where to go instead, in both languages (templates/not_found.html)."""
    return request.app.state.templates.TemplateResponse(
        request, "not_found.html", {"kind": kind, "name": name}, status_code=404
    )


@router.get("/a/{analysis_id}", response_class=HTMLResponse)
async def permalink(
    request: Request,
    registry: RegistryDep,
    service: ServiceDep,
    analysis_id: Annotated[str, Path(max_length=64)],
) -> HTMLResponse:
    """An analysis reopened: the main page with the analysis named on `<body>` for its script.

    The view (`?layer=&channel=&y=&x=`) is applied in the browser by static/js/permalink.js.
    A missing analysis is a friendly page for a browser and the usual JSON error otherwise.
    """
    templates = request.app.state.templates
    try:
        record = await service.find(analysis_id)
    except AnalysisNotFoundError:
        if "text/html" not in request.headers.get("accept", ""):
            raise not_found("analysis", analysis_id) from None
        return missing_page(request, "analysis", analysis_id)
    context = {
        "models": model_summaries(registry),
        "analysis_id": record.analysis_id,
        "model_id": record.model_id,
    }
    return templates.TemplateResponse(request, "index.html", context)
