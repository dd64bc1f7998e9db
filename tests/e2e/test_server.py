"""End to end: a real uvicorn server analyzes a real photo and serves every follow-up read."""

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from app.launch import running_server
from tests.conftest import sample_photo

pytestmark = pytest.mark.e2e


def test_real_server_analyzes_a_photo() -> None:
    with running_server() as base, httpx.Client(base_url=base, timeout=60) as http:
        assert "lenet5-mnist" in http.get("/").text
        response = http.post(
            "/api/v1/models/efficientnet-lite0/analyze",
            files={"image": ("../../etc/passwd", sample_photo("chelsea.png"), "image/png")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert {p["index"] for p in body["predictions"]} & {281, 282, 283, 284, 285}
        layer = next(layer for layer in body["layers"] if layer["name"] == "_blocks.5")
        atlas = http.get(layer["atlas_url"])
        assert atlas.status_code == 200 and atlas.headers["content-type"] == "image/png"
        meta = http.get(layer["url"]).json()
        image = np.asarray(Image.open(io.BytesIO(atlas.content)))
        assert image.shape == (meta["atlas"]["height"], meta["atlas"]["width"])
        channel = http.get(f"{layer['url']}/channels/0").json()
        assert channel["shape"] == layer["shape"][1:]
        assert http.get("/healthz").json() == {"status": "ok"}
