"""Includes one router per resource."""

from fastapi import APIRouter

from app.api.routes import (
    analyses,
    attribution,
    docs,
    filters,
    gallery,
    health,
    layer_math,
    learned_features,
    lessons,
    live_occlusion,
    models,
    pages,
    playground,
    receptive_field,
    self_checks,
    sessions,
    units,
)

api_router = APIRouter()
for module in (
    health,
    pages,
    docs,
    models,
    analyses,
    filters,
    receptive_field,
    lessons,
    playground,
    gallery,
    attribution,
    learned_features,
    sessions,
    units,
    layer_math,
    live_occlusion,
    self_checks,
):
    api_router.include_router(module.router)
