"""Per-analysis attribution routes: the API returns the core's numbers for the exact input."""

import base64
import io

import httpx
import numpy as np
import pytest
import torch
from fastapi import FastAPI
from PIL import Image

from app.config import REPO_ROOT, Settings
from app.core.attribution.colormap import OVERLAY_MAX_ALPHA
from app.core.attribution.effective_rf import effective_receptive_field
from app.core.attribution.gradcam import grad_cam
from app.core.attribution.saliency import SmoothGradOptions, saliency
from app.core.receptive_field import receptive_field_box
from app.core.registry import ModelRegistry
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

DIGIT = (REPO_ROOT / "static" / "samples" / "digits" / "digit-3.png").read_bytes()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(feature_vis_dir=tmp_path / "feature-vis", smoothgrad_samples=3)


async def analysis(client: httpx.AsyncClient, model_id: str, data: bytes) -> str:
    response = await client.post(
        f"/api/v1/models/{model_id}/analyze", content=data, headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    return response.json()["analysis_id"]


def record_input(app: FastAPI, analysis_id: str) -> torch.Tensor:
    return app.state.analyses.record(analysis_id).input


def data_url_image(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])), formats=["PNG"]))


async def test_grad_cam_defaults_to_the_last_map_and_the_top_class(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    body = (await client.get(f"/api/v1/analyses/{aid}/grad-cam")).json()
    model = registry.get("lenet5-mnist")
    field = model.layer_index["relu2"].receptive_field.rf
    expected = grad_cam(model.module, record_input(app, aid), "relu2", None, field)
    top = app.state.analyses.record(aid).predictions[0]
    assert (body["layer"], body["class_index"], body["label"]) == ("relu2", top.index, top.label)
    np.testing.assert_array_equal(np.array(body["cam"], dtype=np.float32), expected.cam.numpy())
    assert body["score"] == expected.score
    overlay = data_url_image(body["overlay_png"])
    assert overlay.shape == (28, 28, 4)
    alpha = np.rint(expected.upsampled.numpy() * OVERLAY_MAX_ALPHA)
    np.testing.assert_array_equal(overlay[..., 3], alpha)


async def test_grad_cam_explicit_layer_class_and_errors(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    body = (await client.get(f"/api/v1/analyses/{aid}/grad-cam?layer=conv1&class_index=7")).json()
    expected = grad_cam(registry.get("lenet5-mnist").module, record_input(app, aid), "conv1", 7)
    assert (body["layer"], body["class_index"]) == ("conv1", 7)
    assert np.array(body["cam"]).shape == (28, 28)
    np.testing.assert_array_equal(np.array(body["cam"], dtype=np.float32), expected.cam.numpy())
    cases = [
        ("layer=nope", 404, "layer_not_found"),
        ("layer=fc1", 422, "not_a_feature_map"),
        ("class_index=10", 422, "class_out_of_range"),
        ("class_index=-1", 422, "invalid_request"),
    ]
    for query, status, code in cases:
        response = await client.get(f"/api/v1/analyses/{aid}/grad-cam?{query}")
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    missing = await client.get("/api/v1/analyses/0123456789abcdef/grad-cam")
    assert missing.json()["error"]["code"] == "analysis_not_found"


async def test_saliency_vanilla_and_smoothgrad(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    module, inputs = registry.get("lenet5-mnist").module, record_input(app, aid)
    vanilla = (await client.get(f"/api/v1/analyses/{aid}/saliency?class_index=3")).json()
    assert vanilla["max"] == float(saliency(module, inputs, 3).map.max())
    assert (vanilla["method"], vanilla["samples"]) == ("vanilla", 0)
    assert data_url_image(vanilla["map_png"]).shape == (28, 28, 3)

    smooth = (
        await client.get(
            f"/api/v1/analyses/{aid}/saliency?method=smoothgrad&seed=4&noise_level=0.1"
        )
    ).json()
    expected = saliency(module, inputs, None, SmoothGradOptions(samples=3, noise_level=0.1, seed=4))
    assert smooth["samples"] == 3  # the settings' default
    assert smooth["max"] == float(expected.map.max())
    assert smooth["noise_std"] == pytest.approx(expected.noise_std)
    too_many = await client.get(f"/api/v1/analyses/{aid}/saliency?method=smoothgrad&samples=65")
    assert too_many.status_code == 422


async def test_occlusion_whole_image_drop_and_window_rules(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    model = registry.get("lenet5-mnist")
    inputs = record_input(app, aid)
    black = (0.0 - model.spec.preprocess.mean[0]) / model.spec.preprocess.std[0]
    with torch.no_grad():
        logits = model.module(inputs[None])[0]
        blank = model.module(torch.full((1, 1, 28, 28), black))[0]
    top = int(logits.argmax())

    whole = (await client.get(f"/api/v1/analyses/{aid}/occlusion?window=28")).json()
    assert whole["fill_pixel"] == 0.0
    assert (whole["rows"], whole["cols"], whole["window"]) == ([0], [0], [28, 28])
    assert whole["drops"][0][0] == pytest.approx(float(logits[top] - blank[top]), abs=1e-5)

    default = (await client.get(f"/api/v1/analyses/{aid}/occlusion")).json()
    assert (default["window"], default["stride"]) == ([4, 4], [2, 2])
    assert default["rows"] == list(range(0, 25, 2))
    assert np.array(default["drops"]).shape == (13, 13)
    assert data_url_image(default["map_png"]).shape == (28, 28, 3)
    for query in ("window=29", "window=4&stride=5", "window=0"):
        response = await client.get(f"/api/v1/analyses/{aid}/occlusion?{query}")
        assert response.status_code == 422, query


async def test_effective_receptive_field_trained_and_random(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    model = registry.get("lenet5-mnist")
    body = (
        await client.get(f"/api/v1/analyses/{aid}/layers/relu2/effective-receptive-field")
    ).json()
    field = model.layer_index["relu2"].receptive_field.rf
    assert (body["y"], body["x"], body["size"]) == (5, 5, [14, 14])
    box = receptive_field_box(field, 5, 5, (28, 28))
    assert body["box"] == {
        "top": box.top,
        "left": box.left,
        "bottom": box.bottom,
        "right": box.right,
    }
    trained = effective_receptive_field(model.module, record_input(app, aid), "relu2", field, 5, 5)
    assert body["trained"]["activation"] == trained.activation
    assert body["trained"]["effective_size"] == trained.effective_size
    assert body["trained"]["mass_in_box"] == pytest.approx(1.0)
    twin = app.state.attribution.random_twin(model)
    random = effective_receptive_field(twin, record_input(app, aid), "relu2", field, 5, 5)
    assert body["random"]["activation"] == random.activation
    assert body["random"]["activation"] != trained.activation
    assert data_url_image(body["random"]["map_png"]).shape == (28, 28, 3)

    one = await client.get(
        f"/api/v1/analyses/{aid}/layers/conv1/effective-receptive-field?y=0&x=27&channel=2"
    )
    assert one.json()["clipped"] == {"top": 0, "left": 25, "bottom": 2, "right": 27}
    for query, status in (("", 422), ("?y=10", 422), ("?channel=16", 422)):
        layer = "fc1" if not query else "relu2"
        response = await client.get(
            f"/api/v1/analyses/{aid}/layers/{layer}/effective-receptive-field{query}"
        )
        assert response.status_code == status, (layer, query)


async def test_efficientnet_grad_cam_and_the_window_budget(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    body = (await client.get(f"/api/v1/analyses/{aid}/grad-cam")).json()
    expected = grad_cam(
        registry.get("efficientnet-lite0").module, record_input(app, aid), "_act_head"
    )
    assert body["layer"] == "_act_head"
    assert body["label"] == "tiger cat"
    np.testing.assert_array_equal(np.array(body["cam"], dtype=np.float32), expected.cam.numpy())
    assert data_url_image(body["overlay_png"]).shape == (224, 224, 4)
    response = await client.get(f"/api/v1/analyses/{aid}/occlusion?window=4&stride=2")
    assert response.json()["error"]["code"] == "too_many_windows"
