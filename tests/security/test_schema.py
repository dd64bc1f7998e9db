"""The OpenAPI schema tells the truth: Schemathesis generates requests for every operation from
the schema alone (a fixed seed), sends them to the in-process app, and runs every built-in
check: no server error, valid requests accepted, invalid ones refused, documented statuses,
content types and headers (Allow on 405), responses that match their schemas."""

import pytest
import schemathesis
import torch
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from app.config import Settings
from app.core.registry import ModelRegistry
from app.main import create_app

pytestmark = [
    pytest.mark.slow,
    # Schemathesis drives ASGI apps through Starlette's TestClient, which warns about httpx.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def _app() -> FastAPI:
    """The app with the bundled models (layer tables cached, so loading costs about a second)."""
    settings = Settings()
    registry = ModelRegistry.from_specs(
        settings.models_dir, torch.device("cpu"), (), settings.data_dir / "layer-tables"
    )
    return create_app(settings, registry=registry)


# The playground's request bodies are rectangular grids, which JSON Schema cannot state: a
# schema-valid ragged or empty grid is refused (422). Left out until its request shape changes.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app()).exclude(path_regex="/playground/")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case: schemathesis.Case) -> None:
    case.call_and_validate()
