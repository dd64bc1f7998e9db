"""HTML pages, rendered from the same data the JSON API serves."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.api.deps import RegistryDep
from app.api.routes.models import model_summary

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, registry: RegistryDep) -> HTMLResponse:
    models = [model_summary(model).model_dump() for model in registry]
    return request.app.state.templates.TemplateResponse(request, "index.html", {"models": models})
