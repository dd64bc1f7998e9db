"""Includes one router per resource."""

from fastapi import APIRouter

from app.api.routes import analyses, docs, filters, health, models, pages, receptive_field

api_router = APIRouter()
for module in (health, pages, docs, models, analyses, filters, receptive_field):
    api_router.include_router(module.router)
