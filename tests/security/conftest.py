"""Security fixtures: a registry from a temporary models dir, the app with its lifespan running.

The registry holds only the real manifest's EfficientNet-Lite0 entry (weights from an installed
package), so these tests never depend on retrainable weights; attacks on the loader build their own
models dirs. The real `models/` is only ever read.
"""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI

from app.config import REPO_ROOT
from app.core.registry import ModelRegistry

PHOTO_MODEL = "efficientnet-lite0"
DIGIT_MODEL = "lenet5-mnist"


def write_models_dir(directory: Path, entries: list[dict]) -> Path:
    """A models dir whose manifest lists exactly `entries`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps({"models": entries}), encoding="utf-8")
    return directory


def real_manifest_entry(model_id: str) -> dict:
    entries = json.loads((REPO_ROOT / "models" / "manifest.json").read_text(encoding="utf-8"))
    return next(entry for entry in entries["models"] if entry["id"] == model_id)


@pytest.fixture(scope="session")
def photo_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_models_dir(tmp_path_factory.mktemp("models"), [real_manifest_entry(PHOTO_MODEL)])


@pytest.fixture(scope="session")
def registry(photo_models_dir: Path) -> ModelRegistry:
    """Overrides the suite's registry: EfficientNet-Lite0 only, loaded once."""
    return ModelRegistry.from_manifest(photo_models_dir, torch.device("cpu"))


@pytest.fixture
async def running_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, for raw ASGI calls."""
    async with app.router.lifespan_context(app):
        yield app
