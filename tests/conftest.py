"""Shared fixtures: the real bundled models (loaded once), an in-process app, sample photos."""

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import skimage
import torch
from fastapi import FastAPI

from app.config import REPO_ROOT, Settings
from app.core.registry import ModelRegistry
from app.main import create_app

# Every app and server the suite starts keeps its durable records in one throwaway folder.
os.environ.setdefault("CONVLENS_DATA_DIR", tempfile.mkdtemp(prefix="convlens-test-data-"))

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"

# Tests run beside servers they start; one intra-op thread avoids oversubscribing the two cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    """Both bundled models, loaded and checked once for the whole session."""
    return ModelRegistry.from_specs(REPO_ROOT / "models", torch.device("cpu"))


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def app(settings: Settings, registry: ModelRegistry) -> FastAPI:
    return create_app(settings, registry=registry)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client with the app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def sample_photo(name: str) -> bytes:
    """A photo shipped inside the scikit-image wheel (offline)."""
    return (SKIMAGE_DATA / name).read_bytes()
