"""Filters endpoints: shapes, exact weights, atlas layouts."""

import io

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.anyio


async def test_lenet_conv1_filters_exact(client: httpx.AsyncClient, registry) -> None:
    meta = (await client.get("/api/v1/models/lenet5-mnist/layers/conv1/filters")).json()
    assert meta["shape"] == [6, 1, 5, 5]
    assert (meta["rgb"], meta["depthwise"], meta["has_bias"]) == (False, False, True)
    assert meta["stride"] == [1, 1] and meta["padding"] == [2, 2]
    weight = registry.get("lenet5-mnist").module.conv1.weight.detach().numpy()
    for o in range(6):
        one = (await client.get(f"/api/v1/models/lenet5-mnist/layers/conv1/filters/{o}")).json()
        np.testing.assert_array_equal(np.array(one["values"], dtype=np.float32), weight[o])
        assert meta["maximums"][o] == pytest.approx(float(np.abs(weight[o]).max()))
    png = await client.get(meta["atlas_url"])
    atlas = np.asarray(Image.open(io.BytesIO(png.content)))
    assert atlas.shape == (meta["atlas"]["height"], meta["atlas"]["width"])


async def test_efficientnet_stem_is_rgb_and_depthwise_flagged(client: httpx.AsyncClient) -> None:
    stem = (await client.get("/api/v1/models/efficientnet-lite0/layers/_conv_stem/filters")).json()
    assert stem["shape"] == [32, 3, 3, 3] and stem["rgb"] is True and stem["stride"] == [2, 2]
    png = await client.get(stem["atlas_url"])
    assert Image.open(io.BytesIO(png.content)).mode == "RGB"
    depthwise = (
        await client.get(
            "/api/v1/models/efficientnet-lite0/layers/_blocks.3._depthwise_conv/filters"
        )
    ).json()
    assert (
        depthwise["shape"] == [144, 1, 5, 5]
        and depthwise["depthwise"] is True
        and depthwise["groups"] == 144
    )


async def test_filters_of_non_conv_layer_or_bad_index_are_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/models/lenet5-mnist/layers/relu1/filters")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_a_conv_layer"
    response = await client.get("/api/v1/models/lenet5-mnist/layers/conv1/filters/6")
    assert response.status_code == 404 and response.json()["error"]["code"] == "filter_not_found"
    response = await client.get("/api/v1/models/lenet5-mnist/layers/..%2F..%2Fetc%2Fpasswd/filters")
    assert response.status_code == 404
