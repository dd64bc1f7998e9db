"""Shared pieces of the attribution routes: their per-app resources, the queue, PNG data URLs.

``attribution_lifespan`` gives each app one ``AttributionResources`` (random twins, shipped top
patches, the feature-visualization worker) and stops its worker with the app; FastAPI merges it
into the app's lifespan because the attribution router declares it.
"""

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request

from app.api.errors import ApiError
from app.api.schemas import InputShape
from app.core.attribution.hooks import LayerNotRunError
from app.core.attribution.resources import AttributionResources
from app.core.registry import LoadedModel

T = TypeVar("T")


@asynccontextmanager
async def attribution_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One ``AttributionResources`` per app; its background worker stops with the app."""
    settings = app.state.settings
    resources = AttributionResources(
        settings.models_dir,
        settings.feature_vis_dir,
        settings.feature_vis_queue_size,
        settings.live_occlusion_cache_bytes,
    )
    app.state.attribution = resources
    try:
        yield
    finally:
        resources.close()


def get_attribution(request: Request) -> AttributionResources:
    return request.app.state.attribution


AttributionDep = Annotated[AttributionResources, Depends(get_attribution)]


async def run_queued(request: Request, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the inference queue; a ValueError from the core becomes a 422 (code
    ``layer_not_run`` when the input's forward took a branch without the layer)."""
    try:
        return await request.app.state.queue.run(fn, *args)
    except LayerNotRunError as error:
        raise ApiError(422, "layer_not_run", str(error)) from error
    except ValueError as error:
        raise ApiError(422, "invalid_parameter", str(error)) from error


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def input_shape(model: LoadedModel) -> InputShape:
    channels, height, width = model.input_shape
    return InputShape(channels=channels, height=height, width=width)
