"""The layer-arithmetic routes: im2col and folded batch norm of a unit, separable pairs."""

import httpx
import pytest

from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

MODEL = "efficientnet-lite0"


async def analysis_url(client: httpx.AsyncClient) -> str:
    response = await client.post(
        f"/api/v1/models/{MODEL}/analyze",
        files={"image": ("chelsea.png", sample_photo("chelsea.png"), "image/png")},
    )
    assert response.status_code == 200, response.text
    return f"/api/v1/analyses/{response.json()['analysis_id']}"


async def test_im2col_and_folded_units_equal_the_networks_values(client: httpx.AsyncClient) -> None:
    base = await analysis_url(client)
    unit = (
        await client.get(f"{base}/layers/_blocks.2._expand_conv/im2col?channel=5&y=3&x=4")
    ).json()
    assert unit["rows"] == 56 * 56 and unit["columns"] == 24 and unit["row_index"] == 3 * 56 + 4
    assert unit["bias"] is None  # EfficientNet's convs leave the bias to the batch norm
    assert unit["dot"] == pytest.approx(unit["value"], abs=1e-4)
    channel = (await client.get(f"{base}/layers/_blocks.2._expand_conv/channels/5")).json()
    assert channel["values"][3][4] == unit["value"]
    folded = (
        await client.get(f"{base}/layers/_blocks.2._expand_conv/folded?channel=5&y=3&x=4")
    ).json()
    assert folded["batchnorm"] == "_blocks.2._bn0"
    assert folded["folded_value"] == pytest.approx(folded["unfolded_value"], abs=1e-4)
    refused = await client.get(f"{base}/layers/_blocks.2._bn0/im2col")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "not_applicable"


async def test_separable_pairs_of_the_photo_model(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"/api/v1/models/{MODEL}/separable")).json()
    assert len(body["pairs"]) == 16
    card = (await client.get(f"/api/v1/models/{MODEL}")).json()
    params = {layer["name"]: layer["params"] for layer in card["layers"]}
    for pair in body["pairs"]:
        assert pair["params"] == params[pair["depthwise"]] + params[pair["pointwise"]]
    assert (await client.get("/api/v1/models/lenet5-mnist/separable")).json()["pairs"] == []
