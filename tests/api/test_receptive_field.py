"""Receptive-field boxes of units, hand-computed for LeNet-5."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("layer", "y", "x", "box", "clipped"),
    [
        # conv1: 5×5 kernel, padding 2 → unit (0, 0) is centred on pixel (0, 0).
        ("conv1", 0, 0, (-2, -2, 2, 2), (0, 0, 2, 2)),
        ("conv1", 27, 13, (25, 11, 29, 15), (25, 11, 27, 15)),
        # conv2: size 14, jump 2, start 4.5 → centre of (3, 7) is (10.5, 18.5).
        ("conv2", 3, 7, (4, 12, 17, 25), (4, 12, 17, 25)),
        # pool2: size 16, jump 4, start 5.5 → unit (4, 4) centred at 21.5: rows 14..29.
        ("pool2", 4, 4, (14, 14, 29, 29), (14, 14, 27, 27)),
    ],
)
async def test_lenet_boxes(
    client: httpx.AsyncClient, layer: str, y: int, x: int, box: tuple, clipped: tuple
) -> None:
    response = await client.get(
        f"/api/v1/models/lenet5-mnist/layers/{layer}/receptive-field?y={y}&x={x}"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    keys = ("top", "left", "bottom", "right")
    assert tuple(body["box"][k] for k in keys) == box
    assert tuple(body["clipped"][k] for k in keys) == clipped
    assert body["input"] == {"channels": 1, "height": 28, "width": 28}


async def test_global_layer_sees_whole_image(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/models/lenet5-mnist/layers/fc1/receptive-field")).json()
    assert body["is_global"] is True
    assert body["clipped"] == {"top": 0, "left": 0, "bottom": 27, "right": 27}


async def test_unit_out_of_range_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/models/lenet5-mnist/layers/conv2/receptive-field?y=10&x=0")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unit_out_of_range"
    response = await client.get("/api/v1/models/lenet5-mnist/layers/conv2/receptive-field?y=-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
