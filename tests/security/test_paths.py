"""Names in URLs are dictionary keys, never file paths: traversal attempts are plain 404s.

Paths go in raw (un-normalised, as a hostile client sends them) and percent-encoded (as a server
decodes them into `scope["path"]`).
"""

import pytest
from fastapi import FastAPI

from tests.security.conftest import PHOTO_MODEL
from tests.security.rawasgi import assert_error, assert_healthy, call_asgi

pytestmark = pytest.mark.anyio

TRAVERSALS = ["..", "../../etc/passwd", "..\\..\\etc\\passwd", "....//....//etc/passwd"]
LAYER = f"/api/v1/models/{PHOTO_MODEL}/layers"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v1/models/..", "model_not_found"),
        ("/api/v1/models/..\\..\\etc\\passwd", "model_not_found"),
        ("/api/v1/models/../../etc/passwd", "not_found"),
        ("/api/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "not_found"),
        ("/api/v1/models/%2e%2e", "model_not_found"),
        (f"{LAYER}/../filters", "layer_not_found"),
        (f"{LAYER}/..\\..\\etc\\passwd/filters", "layer_not_found"),
        (f"{LAYER}/../../../etc/passwd/filters", "not_found"),
        (f"{LAYER}/%2e%2e/receptive-field", "layer_not_found"),
        ("/api/v1/analyses/..", "analysis_not_found"),
        ("/api/v1/analyses/../../etc/passwd", "not_found"),
        ("/api/v1/analyses/..\\..\\etc\\passwd/input.png", "analysis_not_found"),
    ],
)
async def test_traversal_in_model_layer_and_analysis_names_is_404(
    running_app: FastAPI, path: str, code: str
) -> None:
    response = await call_asgi(running_app, "GET", path)
    assert_error(response, 404, code)
    assert b"root:" not in response.body
    await assert_healthy(running_app)


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_in_the_analyze_model_name_is_404(
    running_app: FastAPI, target: str
) -> None:
    response = await call_asgi(
        running_app, "POST", f"/api/v1/models/{target}/analyze", [("content-type", "image/png")]
    )
    assert response.status_code == 404
    assert_error(response, 404)
    await assert_healthy(running_app)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app/config.py",
        "/static/../../../../etc/passwd",
        "/static/..%2fapp%2fconfig.py",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
    ],
)
async def test_static_files_never_leave_their_folder(running_app: FastAPI, path: str) -> None:
    response = await call_asgi(running_app, "GET", path)
    assert_error(response, 404)
    assert b"root:" not in response.body and b"CONVLENS_" not in response.body
    await assert_healthy(running_app)


async def test_static_files_inside_their_folder_are_served(running_app: FastAPI) -> None:
    # The control for the test above: the same helper does reach real static files.
    response = await call_asgi(running_app, "GET", "/static/css/../css/app.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
