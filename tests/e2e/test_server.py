"""End to end: a real uvicorn server analyzes a real photo and serves every follow-up read."""

import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from app.config import Settings
from app.launch import decode_workers, running_server, running_server_process
from tests.conftest import sample_photo

pytestmark = pytest.mark.e2e


def test_the_decode_workers_start_with_the_server_not_with_the_first_upload() -> None:
    with running_server_process() as server:
        deadline = time.monotonic() + 15  # 3-4 of 4 are up when /healthz first answers (0.2-1 s)
        while decode_workers(server.pid) < Settings().decode_workers:
            assert time.monotonic() < deadline, f"{decode_workers(server.pid)} decode workers"
            time.sleep(0.05)


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
