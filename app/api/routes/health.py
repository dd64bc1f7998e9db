"""Liveness: answers even while every inference slot is busy."""

from fastapi import APIRouter

from app.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")
