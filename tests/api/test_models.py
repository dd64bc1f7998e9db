"""GET /api/v1/models and the model cards: exact layer tables, LeNet-5 and EfficientNet-Lite0."""

import tomllib

import httpx
import pytest

from app.config import REPO_ROOT

pytestmark = pytest.mark.anyio


async def test_list_models_has_both_bundled_models(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert models["lenet5-mnist"]["input"] == {"channels": 1, "height": 28, "width": 28}
    assert models["lenet5-mnist"]["input_kind"] == "digit"
    assert models["lenet5-mnist"]["num_classes"] == 10
    assert models["efficientnet-lite0"]["input"] == {"channels": 3, "height": 224, "width": 224}
    assert models["efficientnet-lite0"]["input_kind"] == "photo"
    assert models["efficientnet-lite0"]["num_classes"] == 1000
    for model in models.values():
        assert set(model) >= {
            "id",
            "name",
            "description",
            "num_classes",
            "input",
            "input_kind",
            "i18n",
        }
    for model_id, model in models.items():
        spec = tomllib.loads((REPO_ROOT / "models" / f"{model_id}.toml").read_text("utf-8"))
        assert model["i18n"] == spec["i18n"]
    assert models["lenet5-mnist"]["i18n"]["zh"]["name"] == "LeNet-5 · 手写数字（MNIST）"


async def test_lenet_card_layer_table_is_exact(client: httpx.AsyncClient) -> None:
    card = (await client.get("/api/v1/models/lenet5-mnist")).json()
    assert card["total_params"] == 61_706
    assert card["architecture"] == "app.core.architectures.lenet5:LeNet5"
    assert card["preprocessing"] == {
        "style": "digit",
        "mean": [0.1315],
        "std": [0.3091],
        "resize": 28,
        "interpolation": "bilinear",
    }
    assert card["labels"] == [str(d) for d in range(10)]
    assert card["top_patches"] is True  # shipped beside the weights
    assert card["occlusion_fill"] == 0.0  # black: the digits' background
    layers = {layer["name"]: layer for layer in card["layers"]}
    assert [layer["name"] for layer in card["layers"]] == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
        "flatten", "fc1", "relu3", "fc2", "relu4", "fc3",
    ]  # fmt: skip
    expected = {
        "conv1": ([6, 28, 28], 156, [5, 5], [1, 1], [0, 0]),
        "pool1": ([6, 14, 14], 0, [6, 6], [2, 2], [0.5, 0.5]),
        "conv2": ([16, 10, 10], 2_416, [14, 14], [2, 2], [4.5, 4.5]),
        "pool2": ([16, 5, 5], 0, [16, 16], [4, 4], [5.5, 5.5]),
        "fc1": ([120], 48_120, None, None, None),
        "fc3": ([10], 850, None, None, None),
    }
    for name, (shape, params, size, jump, start) in expected.items():
        layer = layers[name]
        assert layer["output_shape"] == shape
        assert layer["params"] == params
        rf = layer["receptive_field"]
        if size is None:
            assert rf["is_global"] is True
        else:
            assert (rf["size"], rf["jump"], rf["start"]) == (size, jump, start)
    assert layers["conv1"]["type"] == "Conv2d" and layers["conv1"]["kind"] == "conv"
    assert layers["pool1"]["kind"] == "pool" and layers["relu1"]["kind"] == "activation"
    flatten = layers["flatten"]
    assert (flatten["kind"], flatten["output_shape"], flatten["params"]) == ("flatten", [400], 0)


async def test_efficientnet_card(client: httpx.AsyncClient, registry) -> None:
    card = (await client.get("/api/v1/models/efficientnet-lite0")).json()
    assert card["total_params"] == sum(
        p.numel() for p in registry.get("efficientnet-lite0").module.parameters()
    )
    assert len(card["labels"]) == 1000
    assert card["architecture"] == (
        "app.core.architectures.efficientnet_lite:build_efficientnet_lite0"
    )
    assert card["preprocessing"] == {
        "style": "crop",
        "mean": [127 / 255] * 3,
        "std": [128 / 255] * 3,
        "resize": 256,
        "interpolation": "bicubic",
    }
    assert card["top_patches"] is False
    assert card["occlusion_fill"] == 0.5  # the spec's default grey
    layers = {layer["name"]: layer for layer in card["layers"]}
    stem = layers["_conv_stem"]
    assert stem["output_shape"] == [32, 112, 112]
    assert stem["params"] == 32 * 3 * 3 * 3
    assert stem["receptive_field"]["size"] == [3, 3] and stem["receptive_field"]["jump"] == [2, 2]
    depthwise = [layer for layer in card["layers"] if layer["kind"] == "depthwise_conv"]
    assert len(depthwise) == 16
    blocks = [layer for layer in card["layers"] if layer["kind"] == "block"]
    assert [b["name"] for b in blocks] == [f"_blocks.{i}" for i in range(16)]
    assert layers["_fc"]["output_shape"] == [1000]
    assert layers["_fc"]["receptive_field"]["is_global"] is True


@pytest.mark.parametrize("model_id", ["nope", "lenet5-mnist%00", "%2E%2E%5Cwindows"])
async def test_unknown_model_is_404_with_error_shape(
    client: httpx.AsyncClient, model_id: str
) -> None:
    response = await client.get(f"/api/v1/models/{model_id}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["request_id"] == response.headers["x-request-id"]


async def test_traversal_in_model_path_never_escapes(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/models/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
