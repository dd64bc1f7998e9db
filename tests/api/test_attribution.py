"""Per-analysis attribution routes: the API returns the core's numbers for the exact input."""

import asyncio
import base64
import dataclasses
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
import torch
from fastapi import FastAPI
from PIL import Image

from app.api.deps import get_analysis
from app.api.routes.attribution import SALIENCY_SATURATION
from app.config import REPO_ROOT, Settings
from app.core.analysis import recompute_activations
from app.core.attribution.colormap import DIVERGING, OVERLAY_MAX_ALPHA
from app.core.attribution.effective_rf import effective_receptive_field
from app.core.attribution.gradcam import grad_cam
from app.core.attribution.map_stats import speckle
from app.core.attribution.saliency import SmoothGradOptions, saliency
from app.core.receptive_field import receptive_field_box
from app.core.registry import ModelRegistry
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

DIGIT = (REPO_ROOT / "static" / "samples" / "digits" / "digit-3.png").read_bytes()
SEVEN = (REPO_ROOT / "static" / "samples" / "digits" / "digit-7.png").read_bytes()


@pytest.fixture
def settings(tmp_path, request: pytest.FixtureRequest) -> Settings:
    extra = getattr(request, "param", {})
    return Settings(feature_vis_dir=tmp_path / "feature-vis", smoothgrad_samples=3, **extra)


@asynccontextmanager
async def other_client(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second client, from another address, of the app whose lifespan already runs."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


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


async def test_grad_cam_says_how_much_heat_lies_on_the_blank_paper(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", SEVEN)
    body = (await client.get(f"/api/v1/analyses/{aid}/grad-cam")).json()
    model = registry.get("lenet5-mnist")
    inputs = record_input(app, aid)
    pixels = inputs[0] * model.spec.preprocess.std[0] + model.spec.preprocess.mean[0]
    blank = pixels.abs() < 0.5 / 255  # the spec's fill is 0.0: the black paper
    field = model.layer_index["relu2"].receptive_field.rf
    heat = grad_cam(model.module, inputs, "relu2", None, field).upsampled
    assert body["blank_fraction"] == pytest.approx(float(blank.double().mean()))
    assert body["heat_on_blank"] == pytest.approx(float(heat[blank].sum() / heat.sum()))
    assert body["field_size"] == [14, 14]
    assert body["heat_on_blank"] > 0.5  # what the panel's note explains
    photo = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    cam = (await client.get(f"/api/v1/analyses/{photo}/grad-cam")).json()
    assert (cam["blank_fraction"], cam["heat_on_blank"]) == (0.0, 0.0)


async def test_smoothgrad_reports_its_speckle_beside_the_plain_gradients(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "lenet5-mnist", SEVEN)
    module, inputs = registry.get("lenet5-mnist").module, record_input(app, aid)
    body = (await client.get(f"/api/v1/analyses/{aid}/saliency?method=smoothgrad")).json()
    smooth = saliency(module, inputs, None, SmoothGradOptions(samples=3)).map.numpy()
    plain = saliency(module, inputs).map.numpy()
    assert body["speckle"] == pytest.approx(speckle(smooth, SALIENCY_SATURATION))
    assert body["plain_speckle"] == pytest.approx(speckle(plain, SALIENCY_SATURATION))
    vanilla = (await client.get(f"/api/v1/analyses/{aid}/saliency")).json()
    assert vanilla["speckle"] == body["plain_speckle"] and vanilla["plain_speckle"] is None


async def test_occlusion_ships_the_legend_of_its_own_palette(client: httpx.AsyncClient) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    body = (await client.get(f"/api/v1/analyses/{aid}/occlusion")).json()
    legend = data_url_image(body["legend_png"])
    np.testing.assert_array_equal(legend[0], DIVERGING)
    assert tuple(legend[0, 0]) == (33, 102, 172) and tuple(legend[0, -1]) == (178, 24, 43)


async def test_channel_means_name_the_channel_that_responds_most(
    client: httpx.AsyncClient, app: FastAPI, registry: ModelRegistry
) -> None:
    aid = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    body = (await client.get(f"/api/v1/analyses/{aid}/layers/_conv_stem/channel-means")).json()
    model = registry.get("efficientnet-lite0")
    maps = recompute_activations(model, record_input(app, aid), ["_conv_stem"])["_conv_stem"]
    means = maps.mean(dim=(1, 2))
    assert body["means"] == pytest.approx(means.tolist(), rel=1e-5)
    assert body["strongest"] == int(means.argmax()) == 23
    lenet = await analysis(client, "lenet5-mnist", DIGIT)
    logits = (await client.get(f"/api/v1/analyses/{lenet}/layers/fc3/channel-means")).json()
    assert logits["strongest"] == app.state.analyses.record(lenet).predictions[0].index


async def poll(client: httpx.AsyncClient, url: str, until: set[str], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while (body := (await client.get(url)).json())["status"] not in until:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    return body


async def test_jobs_give_the_same_numbers_as_the_plain_routes_with_progress(
    client: httpx.AsyncClient,
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    base = f"/api/v1/analyses/{aid}"
    for method, query in (("occlusion", "window=6&stride=2"), ("saliency", "method=smoothgrad")):
        started = await client.post(f"{base}/{method}/jobs?{query}&class_index=5")
        assert started.status_code == 202
        job = started.json()
        assert (
            started.headers["location"] == job["url"] == f"/api/v1/attribution-jobs/{job['job_id']}"
        )
        assert (job["kind"], job["status"]) == (method, "queued")
        done = await poll(client, job["url"], {"done", "failed"})
        plain = (await client.get(f"{base}/{method}?{query}&class_index=5")).json()
        assert done["status"] == "done" and done["result"] == plain
        total = 12 * 12 if method == "occlusion" else 3  # window positions, noisy copies
        assert (done["done"], done["total"], done["fraction"]) == (total, total, 1.0)


async def test_a_cancelled_job_stops_at_once_and_frees_its_slot(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    aid = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    url = (await client.post(f"/api/v1/analyses/{aid}/occlusion/jobs?window=8&stride=4")).json()[
        "url"
    ]
    deadline = time.monotonic() + 60
    while (body := (await client.get(url)).json())["done"] < 32:
        assert time.monotonic() < deadline and body["status"] in ("queued", "running"), body
        await asyncio.sleep(0.05)
    assert body["total"] == 55 * 55 and 0 < body["fraction"] < 0.1
    assert app.state.queue.running == 1
    asked = time.monotonic()
    assert (await client.delete(url)).status_code == 200
    stopped = await poll(client, url, {"cancelled"}, seconds=5)
    assert time.monotonic() - asked < 2.0
    assert (app.state.queue.running, app.state.queue.admitted) == (0, 0)
    cpu = time.process_time()
    await asyncio.sleep(1.0)
    assert time.process_time() - cpu < 0.3  # nothing computes any more
    assert (await client.get(url)).json()["done"] == stopped["done"] < 55 * 55
    assert stopped["result"] is None


@pytest.mark.parametrize(
    "settings",
    [{"attribution_jobs_per_client": 1, "attribution_jobs": 2}],
    indirect=True,
)
async def test_jobs_are_limited_per_client_and_in_total(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    aid = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    slow = f"/api/v1/analyses/{aid}/occlusion/jobs?window=8&stride=4"
    first = (await client.post(slow)).json()
    refused = await client.post(slow)
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "too_many_jobs")
    assert refused.headers["retry-after"]
    async with other_client(app, "10.0.0.2") as other:
        second = (await other.post(slow)).json()
        not_yours = await other.delete(first["url"])
        assert (not_yours.status_code, not_yours.json()["error"]["code"]) == (403, "not_your_job")
        async with other_client(app, "10.0.0.3") as third:
            full = await third.post(slow)
            assert (full.status_code, full.json()["error"]["code"]) == (503, "busy")
        await other.delete(second["url"])
    await client.delete(first["url"])
    await poll(client, first["url"], {"cancelled"}, seconds=5)
    again = await client.post(slow)  # a cancelled job frees its place
    assert again.status_code == 202
    await client.delete(again.json()["url"])


@pytest.mark.parametrize("settings", [{"attribution_job_abandon_seconds": 0.5}], indirect=True)
async def test_a_job_nobody_asks_about_is_cancelled(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    aid = await analysis(client, "efficientnet-lite0", sample_photo("chelsea.png"))
    job = (await client.post(f"/api/v1/analyses/{aid}/occlusion/jobs?window=8&stride=4")).json()
    await asyncio.sleep(3.0)  # no polls: the page was closed
    board = app.state.attribution_jobs
    assert board.get(job["job_id"]).status == "cancelled"
    assert app.state.queue.running == 0


async def test_job_writes_from_another_site_and_unknown_jobs_are_refused(
    client: httpx.AsyncClient,
) -> None:
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    evil = {"origin": "https://evil.example"}
    response = await client.post(f"/api/v1/analyses/{aid}/occlusion/jobs", headers=evil)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "foreign_origin")
    missing = await client.get("/api/v1/attribution-jobs/0123456789abcdef")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "job_not_found")
    assert (await client.get("/api/v1/attribution-jobs/XYZ")).status_code == 422
    bad = await client.post(f"/api/v1/analyses/{aid}/occlusion/jobs?window=29")
    assert bad.status_code == 422  # the same checks as the plain route, before any job exists


async def test_channel_means_of_a_layer_this_input_did_not_reach_say_so(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A branching forward may skip layers; the answer is a 422, not a server error."""
    aid = await analysis(client, "lenet5-mnist", DIGIT)
    record = app.state.analyses.record(aid)
    skipped = dataclasses.replace(
        record, layers=[stats for stats in record.layers if stats.name != "relu2"]
    )
    app.dependency_overrides[get_analysis] = lambda: skipped
    try:
        response = await client.get(f"/api/v1/analyses/{aid}/layers/relu2/channel-means")
    finally:
        app.dependency_overrides.clear()
    assert (response.status_code, response.json()["error"]["code"]) == (422, "layer_not_run")
    missing = await client.get(f"/api/v1/analyses/{aid}/layers/nope/channel-means")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "layer_not_found")
