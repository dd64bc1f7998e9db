"""The page, the docs and the OpenAPI schema."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_index_lists_models_and_sets_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert 'value="lenet5-mnist"' in response.text and 'value="efficientnet-lite0"' in response.text
    csp = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp
        and "frame-ancestors 'none'" in csp
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text  # no inline scripts


async def test_docs_use_vendored_swagger_without_inline_script(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in response.text
    assert "<script>" not in response.text and "cdn" not in response.text.lower()
    assert (
        await client.get("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js")
    ).status_code == 200


async def test_openapi_documents_contract_with_response_models(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/healthz",
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/models/{model_id}/analyze",
        "/api/v1/analyses/{analysis_id}/layers/{layer}/channels/{channel}",
        "/api/v1/analyses/{analysis_id}/layers/{layer}/atlas.png",
        "/api/v1/models/{model_id}/layers/{layer}/filters",
        "/api/v1/models/{model_id}/layers/{layer}/receptive-field",
    ):
        assert path in paths, path
    analyze = paths["/api/v1/models/{model_id}/analyze"]["post"]
    assert "multipart/form-data" in analyze["requestBody"]["content"]
    assert analyze["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AnalysisOut"
    )
    assert analyze["responses"]["415"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorResponse"
    )
