"""Every attribution panel on every zoo model (``tests/zoo``): PyTorch code as real code is written.

One in-process app serves the twelve zoo specs and an MLP without a single feature map. For each
model every attribution route answers 200 with sane numbers, or a 4xx whose JSON error says why the
panel does not apply; never a 500. Exact checks where they are cheap: a whole-image occlusion
against two plain forwards, fast occlusion against full forwards, the kept clean maps against the
program's capture, and Grad-CAM on a channels-last layer and on functional layers against
references built from plain module hooks, hand-written forwards and autograd.
"""

import asyncio
import base64
import io
import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi import FastAPI
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from app.config import Settings
from app.core import analysis
from app.core.attribution.gradcam import default_cam_layer
from app.core.attribution.local_forward import chain_of, clean_maps, local_shares
from app.core.attribution.occlusion import LOCAL_SHARE, occlusion
from app.core.attribution.random_filters import first_conv_layer
from app.core.capture import capture_layers
from app.core.layer_program import program_of
from app.core.registry import LoadedModel, ModelRegistry
from app.main import create_app
from tests.helpers import assert_same_statistics
from tests.zoo import ZOO
from tests.zoo.specs import write_spec

pytestmark = pytest.mark.anyio

ZOO_IDS = sorted(ZOO)
FAST_OCCLUSION = sorted(model_id for model_id, entry in ZOO.items() if entry.traceable)
"""Models whose forward ``chain_of`` proves a chain with a local first stage: every fx-traceable
one (the untraceable model's Python branch hides its graph, so it runs full forwards)."""
FUNCTIONAL_KINDS = ("activation", "add", "mul", "cat")


def bright_png() -> bytes:
    """A small seeded noise image brighter than mid-grey: the untraceable zoo model then takes its
    "bright" branch, so the "dark" layers of its layer table do not run for it."""
    pixels = np.random.default_rng(0).integers(90, 256, (24, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = bright_png()


MLP_SOURCE = """
from torch import nn


def build(num_classes: int = 10) -> nn.Module:
    hidden = nn.Linear(3 * 8 * 8, 16)
    return nn.Sequential(nn.Flatten(), hidden, nn.ReLU(), nn.Linear(16, num_classes))
"""


def write_mlp_spec(folder: Path) -> None:
    """A model without a single feature map: a multilayer perceptron over 8×8 RGB pixels."""
    (folder / "mlp_model.py").write_text(MLP_SOURCE, encoding="utf-8")
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 10)]
    save_file(nn.Sequential(*layers).state_dict(), folder / "mlp.safetensors")
    labels = ", ".join(f'"class {index}"' for index in range(10))
    (folder / "mlp.toml").write_text(
        'id = "mlp"\nname = "MLP"\ndescription = "No convolutions."\n'
        'entry_point = "mlp_model:build"\nweights = "mlp.safetensors"\n'
        f"labels = [{labels}]\n\n[input]\nchannels = 3\nheight = 8\nwidth = 8\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def zoo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    for model_id in ZOO:
        write_spec(model_id, folder / "specs")
    write_mlp_spec(folder / "specs")
    (folder / "bundled").mkdir()
    return folder


@pytest.fixture(scope="module")
def zoo_registry(zoo_folder: Path) -> ModelRegistry:
    """The zoo and the MLP alone: an empty bundled folder keeps the bundled EfficientNets out."""
    return ModelRegistry.from_specs(
        zoo_folder / "bundled", torch.device("cpu"), extra=[zoo_folder / "specs"]
    )


@pytest.fixture(scope="module")
async def zoo_app(zoo_folder: Path, zoo_registry: ModelRegistry) -> AsyncIterator[FastAPI]:
    settings = Settings(
        models_dir=zoo_folder / "bundled",
        feature_vis_dir=zoo_folder / "feature-vis",
        smoothgrad_samples=2,
    )
    app = create_app(settings, registry=zoo_registry)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def zoo_client(zoo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=zoo_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def answer(client: httpx.AsyncClient, url: str) -> tuple[int, dict]:
    """Status and JSON of a GET, polling while a background job answers 202. A 4xx must say
    why in the error shape; a 5xx fails the test."""
    response = await client.get(url)
    for _ in range(400):
        if response.status_code != 202:
            break
        await asyncio.sleep(0.02)
        response = await client.get(url)
    body = response.json()
    assert response.status_code < 500, (url, body)
    if response.status_code >= 400:
        error = body["error"]
        assert error["code"] and error["message"], (url, body)
    return response.status_code, body


async def ok(client: httpx.AsyncClient, url: str) -> dict:
    status, body = await answer(client, url)
    assert status == 200, (url, body)
    return body


def image_of(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :])
    return np.asarray(Image.open(io.BytesIO(data), formats=["PNG"]))


async def analyze(client: httpx.AsyncClient, app: FastAPI, model_id: str) -> tuple[str, set]:
    """The analysis id of ``IMAGE`` and the layers its forward reached."""
    response = await client.post(
        f"/api/v1/models/{model_id}/analyze", content=IMAGE, headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    analysis_id = response.json()["analysis_id"]
    record = app.state.analyses.record(analysis_id)
    return analysis_id, {stats.name for stats in record.layers}


def spatial(model: LoadedModel, name: str) -> bool:
    shape = model.layer_index[name].output_shape
    return len(shape) == 3 and shape[1] * shape[2] > 1


def functional_maps(model: LoadedModel, ran: set) -> list[str]:
    """Spatial layers computed outside any module (``F.relu``, residual adds, gates, concats)."""
    return [
        layer.name
        for layer in model.layers
        if layer.module is None
        and layer.kind in FUNCTIONAL_KINDS
        and layer.name in ran
        and spatial(model, layer.name)
    ]


def check_cam(body: dict, model: LoadedModel) -> None:
    cam = np.array(body["cam"])
    assert cam.shape == model.layer_index[body["layer"]].output_shape[1:]
    assert np.isfinite(cam).all() and cam.min() >= 0 and body["cam_max"] == cam.max()
    _, height, width = model.input_shape
    assert image_of(body["overlay_png"]).shape == (height, width, 4)


async def check_effective_field(client: httpx.AsyncClient, base: str, model, layer: str) -> None:
    """200 with no gradient outside the theoretical box (unless a gate spreads it) and a random
    twin that differs, or 422 saying why the layer has no receptive field."""
    status, body = await answer(client, f"{base}/layers/{layer}/effective-receptive-field")
    rf = model.layer_index[layer].receptive_field
    if rf.rf is None:
        assert (status, body["error"]["code"]) == (422, "receptive_field_unavailable")
        assert body["error"]["message"] == rf.diagnostic
        return
    assert status == 200, body
    trained, random = body["trained"], body["random"]
    assert math.isfinite(trained["activation"]) and math.isfinite(random["activation"])
    assert trained["activation"] != random["activation"]  # the twin is not the trained model
    if not rf.rf.gated:
        assert trained["mass_in_box"] == pytest.approx(1.0, abs=1e-6)
    _, height, width = model.input_shape
    assert image_of(random["map_png"]).shape == (height, width, 3)


async def check_feature_vis(client: httpx.AsyncClient, model: LoadedModel, layer: str) -> None:
    url = f"/api/v1/models/{model.spec.id}/layers/{layer}/channels/0/feature-vis?steps=3"
    body = await ok(client, url)
    assert body["status"] == "done"
    assert math.isfinite(body["start_activation"]) and math.isfinite(body["final_activation"])
    _, height, width = model.input_shape
    picture = await client.get(body["image_url"])
    shape = np.asarray(Image.open(io.BytesIO(picture.content), formats=["PNG"])).shape
    assert shape == (height, width, 3)


@pytest.mark.parametrize("model_id", ZOO_IDS)
async def test_every_attribution_route_answers(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI, zoo_registry: ModelRegistry, model_id: str
) -> None:
    model = zoo_registry.get(model_id)
    analysis_id, ran = await analyze(zoo_client, zoo_app, model_id)
    base = f"/api/v1/analyses/{analysis_id}"
    functional = functional_maps(model, ran)
    conv = first_conv_layer(model)
    _, height, width = model.input_shape

    cam = await ok(zoo_client, f"{base}/grad-cam")
    assert cam["layer"] == default_cam_layer(model, ran) and cam["layer"] in ran
    check_cam(cam, model)
    if functional:
        check_cam(await ok(zoo_client, f"{base}/grad-cam?layer={functional[-1]}"), model)

    for query in ("", "?method=smoothgrad&samples=2"):
        saliency = await ok(zoo_client, f"{base}/saliency{query}")
        assert 0 < saliency["max"] < math.inf
        assert image_of(saliency["map_png"]).shape == (height, width, 3)

    window = height // 4
    quarters = await ok(zoo_client, f"{base}/occlusion?window={window}&stride={window}")
    steps = math.ceil((height - window) / window) + 1  # the last window clipped at the edge
    assert np.array(quarters["drops"]).shape == (steps, steps)
    assert np.isfinite(quarters["drops"]).all()
    whole = await ok(zoo_client, f"{base}/occlusion?window={height}")
    record = zoo_app.state.analyses.record(analysis_id)
    mean = torch.tensor(model.spec.preprocess.mean)
    fill = (0.5 - mean) / torch.tensor(model.spec.preprocess.std)
    with torch.no_grad():
        clean = model.module(record.input[None])[0, whole["class_index"]]
        grey = model.module(fill.reshape(1, -1, 1, 1).expand(1, -1, height, width).clone())
    expected_drop = float(clean - grey[0, whole["class_index"]])
    assert whole["drops"][0][0] == pytest.approx(expected_drop, abs=1e-4)

    for layer in [conv, *functional[:1]]:
        await check_effective_field(zoo_client, base, model, layer)
        await check_feature_vis(zoo_client, model, layer)

    filters = await ok(zoo_client, f"/api/v1/models/{model_id}/first-layer-filters")
    assert filters["layer"] == conv
    trained, random = filters["trained"], filters["random"]
    assert trained["neighbour_correlation"] != random["neighbour_correlation"]
    twin = zoo_app.state.attribution.random_twin(model)
    assert not torch.equal(twin.get_submodule(conv).weight, model.module.get_submodule(conv).weight)
    assert program_of(twin).channels_last == model.program.channels_last
    atlas = await zoo_client.get(random["atlas_url"])
    assert atlas.status_code == 200 and atlas.headers["content-type"] == "image/png"


async def test_layers_of_a_branch_the_input_did_not_take_say_so(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI
) -> None:
    analysis_id, ran = await analyze(zoo_client, zoo_app, "zoo-untraceable")
    assert "stem.0" in ran and "dark.0" not in ran
    base = f"/api/v1/analyses/{analysis_id}"
    for url, code in (
        (f"{base}/grad-cam?layer=dark.1", "layer_not_run"),
        (f"{base}/layers/dark.0/effective-receptive-field", "receptive_field_unavailable"),
        ("/api/v1/models/zoo-untraceable/layers/dark.0/channels/0/feature-vis?steps=3", None),
    ):
        status, body = await answer(zoo_client, url)
        assert status == 422, (url, body)
        assert body["error"]["code"] == (code or "feature_vis_failed")
    assert "did not run" in body["error"]["message"]


async def test_a_model_without_feature_maps_says_which_panels_do_not_apply(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI, zoo_registry: ModelRegistry
) -> None:
    analysis_id, _ = await analyze(zoo_client, zoo_app, "mlp")
    base = f"/api/v1/analyses/{analysis_id}"
    model = "/api/v1/models/mlp"
    for url, code in (
        (f"{base}/grad-cam", "no_feature_map"),
        (f"{base}/layers/1/effective-receptive-field", "not_a_feature_map"),
        (f"{model}/first-layer-filters", "no_conv_layer"),
        (f"{model}/first-layer-filters/random.png", "no_conv_layer"),
    ):
        status, body = await answer(zoo_client, url)
        assert (status, body["error"]["code"]) == (422, code), url
    assert chain_of(zoo_registry.get("mlp").module, (3, 8, 8)) is None  # nothing to crop
    await ok(zoo_client, f"{base}/saliency")
    await ok(zoo_client, f"{base}/occlusion?window=4&stride=2")
    unit = await ok(zoo_client, f"{model}/layers/3/channels/2/feature-vis?steps=3")
    assert unit["final_activation"] > unit["start_activation"]


def occlusion_window(model: LoadedModel) -> tuple[int, int]:
    """A window and stride that leave a clipped last window: the border cases of crops."""
    window = model.input_shape[1] // 5 + 1
    return window, window - 2


@pytest.mark.parametrize("model_id", FAST_OCCLUSION)
async def test_fast_occlusion_equals_full_forwards(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI, zoo_registry: ModelRegistry, model_id: str
) -> None:
    model = zoo_registry.get(model_id)
    stages = chain_of(model.module, model.input_shape)
    assert stages is not None and stages[0].field is not None
    analysis_id, _ = await analyze(zoo_client, zoo_app, model_id)
    image = zoo_app.state.analyses.record(analysis_id).input
    window, stride = occlusion_window(model)
    with torch.no_grad():
        maps = clean_maps(stages, image[None])
    middle = ((12, 12 + window - 1), (12, 12 + window - 1))
    assert local_shares(stages, maps, middle)[0] <= LOCAL_SHARE  # the crops really run
    fill = torch.zeros(model.input_shape[0])
    fast = occlusion(model.module, image, (window, window), (stride, stride), fill)
    full = occlusion(model.module, image, (window, window), (stride, stride), fill, local=False)
    torch.testing.assert_close(fast.drops, full.drops, rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_id", ZOO_IDS)
def test_statistics_summarized_beside_the_forward_equal_those_of_copied_maps(
    zoo_registry: ModelRegistry, model_id: str
) -> None:
    """Layers are summarized by other threads while the forward goes on; values a later in-place
    op overwrites (DenseNet's and ResNet's ReLUs, every value of the hooked fallback) are copied
    first, so each statistic equals that of the map copied at its tap."""
    model = zoo_registry.get(model_id)
    image = torch.randn(model.input_shape, generator=torch.Generator().manual_seed(11))
    full = analysis.analyze(model, image, keep=[layer.name for layer in model.layers])
    assert_same_statistics(full.layers, analysis.layer_statistics(model, full.activations))
    # all inline, some inline once 4 KiB wait, all on threads; the threads' timing varies
    for waiting_bytes in (0, 4096, 32 * 1024**2, 32 * 1024**2):
        lean = analysis.analyze_batch(model, [image], waiting_bytes=waiting_bytes)[0]
        assert lean.layers == full.layers
        assert lean.logits == full.logits


def test_the_untraceable_model_runs_full_forwards(zoo_registry: ModelRegistry) -> None:
    model = zoo_registry.get("zoo-untraceable")
    assert chain_of(model.module, model.input_shape) is None


@pytest.mark.parametrize("model_id", FAST_OCCLUSION)
def test_in_place_ops_leave_the_kept_clean_maps_intact(
    zoo_registry: ModelRegistry, model_id: str
) -> None:
    """ResNet's stem ``nn.ReLU(inplace=True)`` overwrites ``bn1``'s output in a plain forward; the
    maps fast occlusion keeps must still hold what each stage produced, as the capture does."""
    model = zoo_registry.get(model_id)
    stages = chain_of(model.module, model.input_shape)
    batch = torch.randn((1, *model.input_shape), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        maps = clean_maps(stages, batch)
    named = [(stage.name, maps[i + 1]) for i, stage in enumerate(stages)]
    named = [(name, value) for name, value in named if name in model.layer_index]
    captured = capture_layers(model.program, batch, [name for name, _ in named])
    for name, value in named:
        torch.testing.assert_close(value, captured[name], rtol=0, atol=1e-6, msg=name)
    if model_id == "zoo-resnet":
        assert float(maps[2].min()) < 0  # bn1's output, not the ReLU that overwrote it


def grad_cam_reference(activation: torch.Tensor, gradient: torch.Tensor) -> np.ndarray:
    """ReLU(Σ_k α_k A_k) with α_k the mean gradient over positions, from (K, h, w) tensors."""
    weights = gradient.mean(dim=(1, 2))
    return torch.relu((weights[:, None, None] * activation).sum(0)).numpy()


async def test_grad_cam_on_a_channels_last_layer_matches_a_module_hook(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI, zoo_registry: ModelRegistry
) -> None:
    """ConvNeXt's GELU runs on (N, H, W, C) values between two permutes."""
    model = zoo_registry.get("zoo-convnext")
    analysis_id, _ = await analyze(zoo_client, zoo_app, "zoo-convnext")
    body = await ok(zoo_client, f"/api/v1/analyses/{analysis_id}/grad-cam?layer=stages.0.0.act")
    assert np.array(body["cam"]).shape == (8, 8)
    tapped: dict[str, torch.Tensor] = {}

    def leaf(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        tapped["value"] = output.detach().requires_grad_(True)
        return tapped["value"]

    image = zoo_app.state.analyses.record(analysis_id).input[None]
    handle = model.module.stages[0][0].act.register_forward_hook(leaf)
    try:
        with torch.enable_grad():
            score = model.module(image)[0, body["class_index"]]
            (gradient,) = torch.autograd.grad(score, tapped["value"])
    finally:
        handle.remove()
    activation = tapped["value"].detach()[0].permute(2, 0, 1)
    expected = grad_cam_reference(activation, gradient[0].permute(2, 0, 1))
    np.testing.assert_allclose(np.array(body["cam"]), expected, rtol=1e-4, atol=1e-6)


async def test_grad_cam_on_functional_layers_matches_hand_written_forwards(
    zoo_client: httpx.AsyncClient, zoo_app: FastAPI, zoo_registry: ModelRegistry
) -> None:
    """The tutorial's second ``F.relu``, and ResNet's last ``out += identity`` (the input of the
    block's second call of its in-place ReLU)."""
    tutorial = zoo_registry.get("zoo-tutorial").module
    analysis_id, _ = await analyze(zoo_client, zoo_app, "zoo-tutorial")
    body = await ok(zoo_client, f"/api/v1/analyses/{analysis_id}/grad-cam?layer=relu_1")
    image = zoo_app.state.analyses.record(analysis_id).input[None]
    with torch.enable_grad():
        relu_1 = F.relu(tutorial.conv2(tutorial.pool(F.relu(tutorial.conv1(image)))))
        leaf = relu_1.detach().requires_grad_(True)
        hidden = F.relu(tutorial.fc1(torch.flatten(tutorial.pool(leaf), 1)))
        score = tutorial.fc3(F.relu(tutorial.fc2(hidden)))[0, body["class_index"]]
        (gradient,) = torch.autograd.grad(score, leaf)
    expected = grad_cam_reference(leaf.detach()[0], gradient[0])
    np.testing.assert_allclose(np.array(body["cam"]), expected, rtol=1e-4, atol=1e-6)

    resnet = zoo_registry.get("zoo-resnet").module
    analysis_id, _ = await analyze(zoo_client, zoo_app, "zoo-resnet")
    body = await ok(zoo_client, f"/api/v1/analyses/{analysis_id}/grad-cam?layer=layer3.1.add")
    calls: list[torch.Tensor] = []

    def second_call_input(_module: nn.Module, inputs: tuple[torch.Tensor]) -> tuple:
        calls.append(inputs[0].detach().requires_grad_(True))
        return (calls[-1].clone(),) if len(calls) == 2 else None

    image = zoo_app.state.analyses.record(analysis_id).input[None]
    handle = resnet.layer3[1].relu.register_forward_pre_hook(second_call_input)
    try:
        with torch.enable_grad():
            score = resnet(image)[0, body["class_index"]]
            (gradient,) = torch.autograd.grad(score, calls[1])
    finally:
        handle.remove()
    expected = grad_cam_reference(calls[1].detach()[0], gradient[0])
    np.testing.assert_allclose(np.array(body["cam"]), expected, rtol=1e-4, atol=1e-6)
