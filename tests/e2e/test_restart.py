"""Permalinks survive a restart: analyze, SIGKILL the real server, start it again, read back.

Each test uses its own data directory, so nothing else the suite stored is involved.
"""

import os
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load as load_safetensors

from app.launch import running_server_process
from tests.conftest import sample_photo

pytestmark = pytest.mark.e2e


def test_a_permalink_and_its_layers_answer_after_a_sigkill(tmp_path: Path) -> None:
    env = {"CONVLENS_DATA_DIR": str(tmp_path)}
    with (
        running_server_process(env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        response = http.post(
            "/api/v1/models/efficientnet-lite0/analyze",
            files={"image": ("coffee.png", sample_photo("coffee.png"), "image/png")},
        )
        assert response.status_code == 200, response.text
        before = response.json()
        channel_before = http.get(
            f"/api/v1/analyses/{before['analysis_id']}/layers/_blocks.3/channels/5"
        ).json()
        os.kill(server.pid, signal.SIGKILL)
    with (
        running_server_process(env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        analysis_id = before["analysis_id"]
        after = http.get(f"/api/v1/analyses/{analysis_id}")
        assert after.status_code == 200, after.text
        assert after.json()["predictions"] == before["predictions"]
        assert after.json()["layers"] == before["layers"]
        channel = http.get(f"/api/v1/analyses/{analysis_id}/layers/_blocks.3/channels/5")
        assert channel.status_code == 200
        assert channel.json()["values"] == channel_before["values"]  # recomputed, bit for bit
        page = http.get(f"/a/{analysis_id}")
        assert page.status_code == 200
    with closing(sqlite3.connect(tmp_path / "records.sqlite3")) as db:
        (stored,) = db.execute("SELECT input FROM records").fetchone()
    pixels = load_safetensors(stored)  # the decoder's uint8 pixels, not 600 KB of floats
    assert {name: (t.dtype, tuple(t.shape)) for name, t in pixels.items()} == {
        "pixels": (torch.uint8, (3, 224, 224))
    }
