"""The OpenAPI schema tells the truth: Schemathesis generates requests for every operation from
the schema alone (a fixed seed), sends them to the in-process app, and runs every built-in
check: no server error, valid requests accepted, invalid ones refused, documented statuses,
content types and headers (Allow on 405), responses that match their schemas.

The playground's bodies have rules between fields that JSON Schema cannot state (rows of equal
length, filters as deep as the input, windows that fit); the schema lists them under its 422
response. For those four operations `positive_data_acceptance` gives way to a stricter check of
the same thing: a schema-valid body is computed, or refused with one of those rules' codes, never
with `invalid_request` (which would mean the schema failed to state a bound).

`CONVLENS_SCHEMA_EXAMPLES` sets the examples per operation and phase (default 15: ~50 s).
"""

import os
import re

import pytest
import schemathesis
import torch
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.api.schemas_playground import CROSS_FIELD_RULES
from app.config import Settings
from app.core.registry import ModelRegistry
from app.main import create_app

pytestmark = [
    pytest.mark.slow,
    # Schemathesis drives ASGI apps through Starlette's TestClient, which warns about httpx.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

EXAMPLES = int(os.environ.get("CONVLENS_SCHEMA_EXAMPLES", "15"))
PLAYGROUND_BODIES = re.compile(r"/api/v1/playground/(conv|pool|relu|im2col)")


def _app() -> FastAPI:
    """The app with the bundled models (layer tables cached, so loading costs about a second)."""
    settings = Settings()
    registry = ModelRegistry.from_specs(
        settings.models_dir, torch.device("cpu"), (), settings.data_dir / "layer-tables"
    )
    return create_app(settings, registry=registry)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


def playground_body_acceptance(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """A schema-valid playground body is answered 2xx, or 422 for a rule between its fields."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code < 300:
        return
    code = response.json()["error"]["code"] if response.status_code == 422 else None
    assert code in CROSS_FIELD_RULES, (
        f"a schema-valid body was refused with {response.status_code} {response.text[:300]}"
    )


def check(case: schemathesis.Case) -> None:
    if PLAYGROUND_BODIES.fullmatch(case.path) and case.method == "POST":
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance],
            additional_checks=[playground_body_acceptance],
        )
    else:
        case.call_and_validate()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_every_operation_keeps_its_contract(case: schemathesis.Case) -> None:
    check(case)
