"""Bad requests get a clear JSON error in the one shape, never a 500."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


async def test_empty_file_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/models/lenet5-mnist/analyze", files={"image": ("a.png", b"", "image/png")}
    )
    assert_error(response, 400, "empty_image")


async def test_random_bytes_are_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/models/lenet5-mnist/analyze",
        files={"image": ("a.png", b"\x00\x01garbage" * 50, "image/png")},
    )
    assert_error(response, 415, "unsupported_image_type")


async def test_missing_field_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/models/lenet5-mnist/analyze", files={"photo": ("a.png", b"x", "image/png")}
    )
    assert_error(response, 422, "missing_image")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/models/lenet5-mnist/analyze", json={"image": "x"})
    assert_error(response, 415, "unsupported_media_type")


async def test_raw_image_body_is_accepted(client: httpx.AsyncClient) -> None:
    from tests.api.test_analyses import drawn_digit_one

    response = await client.post(
        "/api/v1/models/lenet5-mnist/analyze",
        content=drawn_digit_one(),
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200
    assert response.json()["predictions"][0]["label"] == "1"


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await client.delete("/api/v1/models"), 405, "method_not_allowed")


async def test_client_request_id_is_kept_when_plain_and_replaced_when_not(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id\t<script>"})
    assert replaced.headers["x-request-id"] != "bad id\t<script>"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """GET and DELETE of one session are two routes: the Allow header names both."""
    response = await client.request("PATCH", "/api/v1/sessions/0000000000000000")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_body_that_is_not_json_is_a_documented_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/lessons/convolution/checks/stride-3-on-7x7",
        content=b"\x21\xff\x07",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"
