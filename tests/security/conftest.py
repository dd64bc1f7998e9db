"""Security fixtures: a registry from a temporary models dir, the app with its lifespan running.

The registry holds only the bundled EfficientNet-Lite0 spec (weights from an installed package), so
these tests never depend on retrainable weights; attacks on the loader write their own spec files.
The real `models/` is only ever read.
"""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI

from app.config import REPO_ROOT
from app.core.preprocess import PreprocessSpec
from app.core.registry import ModelRegistry, read_model_specs

PHOTO_MODEL = "efficientnet-lite0"
DIGIT_MODEL = "lenet5-mnist"


def bundled_preprocessing(model_id: str) -> PreprocessSpec:
    """A bundled model's preprocessing as its spec states it (no weights loaded)."""
    specs = read_model_specs(REPO_ROOT / "models")
    return next(spec.preprocess for spec in specs if spec.id == model_id)


def bundled_spec(model_id: str, **keys: str | None) -> str:
    """The text of a bundled spec, with top-level string `keys` replaced (None removes the key)."""
    text = (REPO_ROOT / "models" / f"{model_id}.toml").read_text(encoding="utf-8")
    for key, value in keys.items():
        line = "" if value is None else f"{key} = {json.dumps(value)}"
        text, count = re.subn(rf"^{key} = .*$", line, text, count=1, flags=re.MULTILINE)
        assert count == 1, f"{model_id}.toml has no top-level {key}"
    return text


def write_spec(directory: Path, model_id: str, text: str) -> Path:
    """`directory/<model_id>.toml` holding `text`; returns the spec file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{model_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def photo_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    write_spec(directory, PHOTO_MODEL, bundled_spec(PHOTO_MODEL))
    return directory


@pytest.fixture(scope="session")
def registry(photo_models_dir: Path) -> ModelRegistry:
    """Overrides the suite's registry: EfficientNet-Lite0 only, loaded once."""
    return ModelRegistry.from_specs(photo_models_dir, torch.device("cpu"))


@pytest.fixture
async def running_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, for raw ASGI calls."""
    async with app.router.lifespan_context(app):
        yield app
