"""Hostile uploads to POST /analyze: each gets its exact 4xx in the one error shape, never a 5xx,
and the server keeps answering /healthz afterwards."""

import io

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import (
    GIF_JS_POLYGLOT,
    POLYGLOT_PAYLOAD,
    foreign_files,
    gif_bomb,
    gradient_image,
    png_bomb,
    png_html_zip_polyglot,
)
from tests.security.rawasgi import assert_error, assert_healthy

pytestmark = pytest.mark.anyio

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"


async def upload(
    client: httpx.AsyncClient, data: bytes, name: str = "upload.png", kind: str = "image/png"
) -> httpx.Response:
    return await client.post(ANALYZE, files={"image": (name, data, kind)})


async def refused(
    app: FastAPI, response: httpx.Response, status: int, code: str | None = None
) -> str:
    message = assert_error(response, status, code)
    await assert_healthy(app)
    return message


async def test_zero_byte_file_is_400(client: httpx.AsyncClient, app: FastAPI) -> None:
    await refused(app, await upload(client, b""), 400, "empty_image")
    raw = await client.post(ANALYZE, content=b"", headers={"content-type": "image/png"})
    await refused(app, raw, 400, "empty_image")


async def test_random_bytes_are_415(client: httpx.AsyncClient, app: FastAPI) -> None:
    noise = np.random.default_rng(11).bytes(4096)
    await refused(app, await upload(client, noise), 415, "unsupported_image_type")


@pytest.mark.parametrize("kind", ["svg", "pdf", "eps", "tiff"])
async def test_formats_outside_the_allowlist_are_415(
    client: httpx.AsyncClient, app: FastAPI, kind: str
) -> None:
    response = await upload(client, foreign_files()[kind], name=f"x.{kind}", kind="image/png")
    message = await refused(app, response, 415, "unsupported_image_type")
    assert "PNG, JPEG, GIF, WEBP or BMP" in message


@pytest.mark.parametrize(
    "bomb",
    [
        png_bomb(7_000, 7_000),
        png_bomb(100_000, 100_000),
        gif_bomb(10_000, 10_000),
        gif_bomb(65_535, 65_535),
    ],
    ids=["png-49M", "png-10G", "gif-100M", "gif-4G"],
)
async def test_decompression_bombs_are_413(
    client: httpx.AsyncClient, app: FastAPI, bomb: bytes
) -> None:
    # Under 100 bytes each: decoding would need 147 MB to 30 GB, so a 413 (not a 422 for the
    # missing pixel data, not a MemoryError) shows the header alone decided.
    assert len(bomb) < 100
    await refused(app, await upload(client, bomb), 413, "image_too_large")


async def test_truncated_jpeg_is_422(client: httpx.AsyncClient, app: FastAPI) -> None:
    jpeg = encode(gradient_image(320, 240), "JPEG", quality=90)
    response = await upload(client, jpeg[: len(jpeg) * 6 // 10], kind="image/jpeg")
    await refused(app, response, 422, "corrupt_image")


@pytest.mark.parametrize("size", [(1, 1), (1, 80_000), (80_000, 1)])
async def test_tiny_and_extreme_images_are_analyzed(
    client: httpx.AsyncClient, size: tuple[int, int]
) -> None:
    image = Image.new("RGB", size, (200, 40, 90))
    response = await upload(client, encode(image, "PNG"))
    assert response.status_code == 200, response.text
    seen = Image.open(io.BytesIO((await client.get(response.json()["input_url"])).content))
    # A flat colour stays that flat colour through resize and crop, whatever the aspect ratio.
    assert seen.size == (224, 224)
    assert np.abs(np.asarray(seen, np.int16) - (200, 40, 90)).max() <= 1


async def test_exif_rotated_jpeg_is_analyzed_upright(client: httpx.AsyncClient) -> None:
    # Stored 448×224 landscape, red left / blue right; orientation 6 = shown turned 90° clockwise,
    # so the model must see a portrait: red on top, blue below (centre-cropped to 224×224).
    stored = np.zeros((224, 448, 3), np.uint8)
    stored[:, :224] = (220, 0, 0)
    stored[:, 224:] = (0, 0, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    response = await upload(client, jpeg, kind="image/jpeg")
    assert response.status_code == 200, response.text
    seen = np.asarray(
        Image.open(io.BytesIO((await client.get(response.json()["input_url"])).content)),
        np.int16,
    )
    assert seen.shape == (224, 224, 3)
    top, bottom = seen[:100].mean(axis=(0, 1)), seen[124:].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 20
    assert bottom[2] > 200 and bottom[0] < 20


async def test_png_html_zip_polyglot_is_only_ever_an_image(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await upload(client, png_html_zip_polyglot(), name="page.html", kind="text/html")
    assert response.status_code == 200, response.text
    served = await client.get(response.json()["input_url"])
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert POLYGLOT_PAYLOAD not in served.content and b"PK\x03\x04" not in served.content
    await assert_healthy(app)


async def test_gif_javascript_polyglot_is_422(client: httpx.AsyncClient, app: FastAPI) -> None:
    await refused(app, await upload(client, GIF_JS_POLYGLOT), 422, "corrupt_image")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"image": "iVBORw0KGgo="}'),
        ("text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"image=%89PNG"),
        ("application/octet-stream", b"\x89PNG\r\n\x1a\n"),
        ("", b"\x89PNG\r\n\x1a\n"),
    ],
)
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, app: FastAPI, content_type: str, body: bytes
) -> None:
    response = await client.post(ANALYZE, content=body, headers={"content-type": content_type})
    await refused(app, response, 415, "unsupported_media_type")


async def test_multipart_without_boundary_is_400(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.post(
        ANALYZE, content=b"--x\r\n\r\n--x--\r\n", headers={"content-type": "multipart/form-data"}
    )
    await refused(app, response, 400, "bad_request")


def multipart(
    parts: list[tuple[list[str], bytes]], boundary: str = "b0undary"
) -> tuple[bytes, str]:
    """A multipart body from (header lines, payload) parts, and its Content-Type."""
    chunks = []
    for headers, payload in parts:
        head = "".join(f"{line}\r\n" for line in headers)
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + payload + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def image_part(name: str = "image") -> tuple[list[str], bytes]:
    disposition = f'Content-Disposition: form-data; name="{name}"; filename="a.png"'
    return [disposition, "Content-Type: image/png"], encode(gradient_image(8, 8), "PNG")


def field_part(index: int, value: bytes = b"x") -> tuple[list[str], bytes]:
    return [f'Content-Disposition: form-data; name="field{index}"'], value


@pytest.mark.parametrize(
    ("parts", "detail"),
    [
        ([field_part(i) for i in range(5_000)] + [image_part()], "Too many fields"),
        ([image_part(), image_part("image2")], "Too many files"),
        ([field_part(0, b"y" * 200_000), image_part()], "Part exceeded maximum size"),
        (
            [([*image_part()[0], *(f"X-Flood-{i}: {i}" for i in range(3_000))], b"x")],
            "Invalid multipart data",
        ),
        ([([*image_part()[0], "X-Long: " + "z" * 1_000_000], b"x")], "Invalid multipart data"),
        ([(["Content-Type: image/png"], b"x")], '"name" must be provided'),
    ],
    ids=[
        "5000-fields",
        "two-files",
        "huge-field",
        "3000-part-headers",
        "1MB-part-header",
        "no-name",
    ],
)
async def test_multipart_floods_are_400(
    client: httpx.AsyncClient, app: FastAPI, parts: list[tuple[list[str], bytes]], detail: str
) -> None:
    body, content_type = multipart(parts)
    assert len(body) < 10 * 1024 * 1024
    response = await client.post(ANALYZE, content=body, headers={"content-type": content_type})
    assert detail in await refused(app, response, 400, "bad_request")


async def test_multipart_over_the_body_cap_is_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    body, content_type = multipart([field_part(i, b"v" * 2_000) for i in range(6_000)])
    response = await client.post(ANALYZE, content=body, headers={"content-type": content_type})
    await refused(app, response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "a\x00.png", "%2e%2e/x"]
)
async def test_path_traversal_file_names_are_ignored(client: httpx.AsyncClient, name: str) -> None:
    data = encode(gradient_image(33, 17), "PNG")
    plain = await upload(client, data, name="photo.png")
    hostile = await upload(client, data, name=name)
    assert plain.status_code == hostile.status_code == 200, hostile.text
    # Content-addressed: the name changed nothing, and it is echoed nowhere.
    assert hostile.json()["analysis_id"] == plain.json()["analysis_id"]
    assert hostile.json()["cached"] is True
    assert "passwd" not in hostile.text and "win.ini" not in hostile.text
