"""What the unit-arithmetic panel reads: layer inputs, input channels, batch-norm constants.

Each test redoes a layer's arithmetic with numpy from API numbers only, as the browser does, and
compares with the value the API reports for that unit.
"""

import httpx
import numpy as np
import pytest

from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

MODEL = "efficientnet-lite0"


async def analyze_chelsea(client: httpx.AsyncClient) -> str:
    response = await client.post(
        f"/api/v1/models/{MODEL}/analyze",
        files={"image": ("chelsea.png", sample_photo("chelsea.png"), "image/png")},
    )
    assert response.status_code == 200, response.text
    return response.json()["analysis_id"]


async def get_json(client: httpx.AsyncClient, path: str) -> dict:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_cards_name_each_layers_input_and_hidden_padding(client: httpx.AsyncClient) -> None:
    layers = {
        layer["name"]: layer
        for layer in (await get_json(client, f"/api/v1/models/{MODEL}"))["layers"]
    }
    expected = {
        "_conv_stem": ("input", [0, 0, 1, 1]),
        "_bn0": ("_conv_stem", [0, 0, 0, 0]),
        "_blocks.1._depthwise_conv": ("_blocks.1._expand_act", [0, 0, 1, 1]),
        "_blocks.2": ("_blocks.1", [0, 0, 0, 0]),
        "_blocks.4._depthwise_conv": ("_blocks.4._expand_act", [0, 0, 0, 0]),
        "_flatten": ("_avg_pooling", [0, 0, 0, 0]),
        "_fc": ("_flatten", [0, 0, 0, 0]),
    }
    for name, (source, padding) in expected.items():
        assert (layers[name]["input_layer"], layers[name]["input_padding"]) == (source, padding)
    lenet = {
        layer["name"]: layer["input_layer"]
        for layer in (await get_json(client, "/api/v1/models/lenet5-mnist"))["layers"]
    }
    assert lenet["conv1"] == "input" and lenet["conv2"] == "pool1" and lenet["flatten"] == "pool2" and lenet["fc1"] == "flatten"


@pytest.mark.parametrize(("y", "x"), [(0, 0), (57, 31), (111, 111)])
async def test_stem_unit_recomputed_from_input_channels_and_filter(
    client: httpx.AsyncClient, y: int, x: int
) -> None:
    """Σ input patch × kernel over the three colour channels == the API's _conv_stem value."""
    analysis = await analyze_chelsea(client)
    base = f"/api/v1/analyses/{analysis}"
    channels = [await get_json(client, f"{base}/input/channels/{c}") for c in range(3)]
    image = np.array([c["values"] for c in channels], dtype=np.float64)
    assert image.shape == (3, 224, 224)
    assert [c["layer"] for c in channels] == ["input"] * 3
    padded = np.pad(image, ((0, 0), (0, 1), (0, 1)))  # input_padding [0, 0, 1, 1], conv pads 0
    out_channel = 7
    kernel = await get_json(
        client, f"/api/v1/models/{MODEL}/layers/_conv_stem/filters/{out_channel}"
    )
    weights = np.array(kernel["values"], dtype=np.float64)
    assert weights.shape == (3, 3, 3) and kernel["bias"] is None
    patch = padded[:, 2 * y : 2 * y + 3, 2 * x : 2 * x + 3]
    expected = float((patch * weights).sum())
    served = await get_json(client, f"{base}/layers/_conv_stem/channels/{out_channel}")
    assert served["values"][y][x] == pytest.approx(expected, abs=1e-4)


async def test_input_channel_out_of_range_is_404(client: httpx.AsyncClient) -> None:
    analysis = await analyze_chelsea(client)
    response = await client.get(f"/api/v1/analyses/{analysis}/input/channels/3")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "channel_not_found"


async def test_batchnorm_constants_reproduce_the_layer(client: httpx.AsyncClient) -> None:
    analysis = await analyze_chelsea(client)
    constants = await get_json(client, f"/api/v1/models/{MODEL}/layers/_bn0/batchnorm")
    assert len(constants["running_mean"]) == 32 and constants["eps"] == pytest.approx(1e-3)
    channel = 11
    base = f"/api/v1/analyses/{analysis}/layers"
    before = np.array((await get_json(client, f"{base}/_conv_stem/channels/{channel}"))["values"])
    after = np.array((await get_json(client, f"{base}/_bn0/channels/{channel}"))["values"])
    mean, var = constants["running_mean"][channel], constants["running_var"][channel]
    gamma, beta = constants["weight"][channel], constants["bias"][channel]
    expected = (before - mean) / np.sqrt(var + constants["eps"]) * gamma + beta
    np.testing.assert_allclose(after, expected, atol=1e-4, rtol=0)


async def test_batchnorm_of_a_conv_layer_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/models/{MODEL}/layers/_conv_stem/batchnorm")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_a_batchnorm_layer"


async def test_depthwise_unit_recomputed_from_a_patch(client: httpx.AsyncClient) -> None:
    """A stride-2 depthwise unit on the bottom-right border: hidden TF-"SAME" padding included."""
    analysis = await analyze_chelsea(client)
    layer, channel, y, x = "_blocks.1._depthwise_conv", 40, 55, 55
    card = await get_json(client, f"/api/v1/models/{MODEL}")
    info = next(item for item in card["layers"] if item["name"] == layer)
    top, left, _, _ = info["input_padding"]
    source = info["input_layer"]
    patch = await get_json(
        client,
        f"/api/v1/analyses/{analysis}/layers/{source}/patch"
        f"?top={2 * y - top}&left={2 * x - left}&height=3&width=3&channel={channel}",
    )
    assert patch["channels"] == [channel]
    window = np.array(
        [[np.nan if v is None else v for v in row] for row in patch["values"][0]], dtype=np.float64
    )
    assert (
        np.isnan(window[2]).all() and np.isnan(window[:, 2]).all()
    )  # 112 rows: row 112 is padding
    kernel = await get_json(client, f"/api/v1/models/{MODEL}/layers/{layer}/filters/{channel}")
    expected = float((np.nan_to_num(window) * np.array(kernel["values"][0])).sum())
    served = await get_json(
        client, f"/api/v1/analyses/{analysis}/layers/{layer}/channels/{channel}"
    )
    assert served["values"][y][x] == pytest.approx(expected, abs=1e-4)


async def test_input_patch_matches_input_channels(client: httpx.AsyncClient) -> None:
    analysis = await analyze_chelsea(client)
    base = f"/api/v1/analyses/{analysis}/input"
    patch = await get_json(client, f"{base}/patch?top=-1&left=220&height=2&width=5")
    assert patch["channels"] == [0, 1, 2]
    for c in range(3):
        values = (await get_json(client, f"{base}/channels/{c}"))["values"]
        assert patch["values"][c][0] == [None] * 5
        assert patch["values"][c][1] == [*values[0][220:224], None]


async def test_patch_of_a_vector_layer_is_422(client: httpx.AsyncClient) -> None:
    analysis = await analyze_chelsea(client)
    response = await client.get(
        f"/api/v1/analyses/{analysis}/layers/_fc/patch?top=0&left=0&height=1&width=1"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_patch"
