"""POST analyze and the follow-up reads, checked against independent torch computations."""

import io

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from app.api.schemas import AnalysisOut
from app.core.preprocess import decode_image, to_model_input
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO_OR_CUP = {967, 968}


def drawn_digit_one() -> bytes:
    """A '1' drawn in dark ink on white paper, as a student would draw it."""
    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).line([(100, 30), (100, 170)], fill="black", width=18)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def post_image(
    client: httpx.AsyncClient, model_id: str, data: bytes, name: str = "x.png"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/models/{model_id}/analyze", files={"image": (name, data, "image/png")}
    )


@pytest.mark.parametrize(
    ("photo", "expected"), [("chelsea.png", CAT_CLASSES), ("coffee.png", ESPRESSO_OR_CUP)]
)
async def test_efficientnet_recognises_sample_photos(
    client: httpx.AsyncClient, photo: str, expected: set[int]
) -> None:
    response = await post_image(client, "efficientnet-lite0", sample_photo(photo))
    assert response.status_code == 200, response.text
    body = response.json()
    predictions = body["predictions"]
    assert len(predictions) == 5
    assert {p["index"] for p in predictions} & expected
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    logits = np.array(body["logits"], dtype=np.float64)
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert probabilities[0] == pytest.approx(softmax.max(), abs=1e-9)
    assert predictions[0]["index"] == int(softmax.argmax())


async def test_analysis_layers_follow_the_model_card(client: httpx.AsyncClient) -> None:
    body = (await post_image(client, "efficientnet-lite0", sample_photo("chelsea.png"))).json()
    card = (await client.get("/api/v1/models/efficientnet-lite0")).json()
    assert [layer["name"] for layer in body["layers"]] == [
        layer["name"] for layer in card["layers"]
    ]
    assert [layer["shape"] for layer in body["layers"]] == [
        layer["output_shape"] for layer in card["layers"]
    ]
    relu = next(layer for layer in body["layers"] if layer["name"] == "_act_stem")
    assert relu["min"] >= 0 and relu["max"] <= 6


async def test_analysis_body_is_exactly_the_schema_encoding(client: httpx.AsyncClient) -> None:
    """The body is written by orjson from plain data: byte for byte what pydantic writes for the
    documented `AnalysisOut` (validated from that body), for a fresh and a stored one."""
    response = await post_image(client, "efficientnet-lite0", sample_photo("coffee.png"))
    again = await client.get(f"/api/v1/analyses/{response.json()['analysis_id']}")
    for body in (response.content, again.content):
        assert AnalysisOut.model_validate_json(body).model_dump_json().encode() == body


async def test_repeat_upload_is_cached_with_same_id(client: httpx.AsyncClient) -> None:
    data = drawn_digit_one()
    first = (await post_image(client, "lenet5-mnist", data)).json()
    second = (await post_image(client, "lenet5-mnist", data, name="other-name.png")).json()
    assert first["analysis_id"] == second["analysis_id"]
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["predictions"] == second["predictions"]
    again = (await client.get(f"/api/v1/analyses/{first['analysis_id']}")).json()
    assert again["predictions"] == first["predictions"]


async def test_drawn_one_is_read_as_one(client: httpx.AsyncClient) -> None:
    body = (await post_image(client, "lenet5-mnist", drawn_digit_one())).json()
    assert body["predictions"][0]["label"] == "1"


async def test_channel_values_are_the_exact_conv_output(
    client: httpx.AsyncClient, registry
) -> None:
    data = drawn_digit_one()
    body = (await post_image(client, "lenet5-mnist", data)).json()
    model = registry.get("lenet5-mnist")
    inputs = to_model_input(decode_image(data, 10**8), model.spec.preprocess).unsqueeze(0)
    conv1 = model.module.conv1
    expected = F.conv2d(inputs, conv1.weight, conv1.bias, padding=2)[0]
    stats = next(layer for layer in body["layers"] if layer["name"] == "conv1")
    channels = []
    for c in range(6):
        response = await client.get(
            f"/api/v1/analyses/{body['analysis_id']}/layers/conv1/channels/{c}"
        )
        assert response.status_code == 200
        channel = response.json()
        assert channel["shape"] == [28, 28]
        values = torch.tensor(channel["values"], dtype=torch.float32)
        torch.testing.assert_close(values, expected[c], rtol=0, atol=1e-6)
        channels.append(values)
    stacked = torch.stack(channels)
    assert stats["min"] == pytest.approx(float(stacked.min()), abs=1e-6)
    assert stats["max"] == pytest.approx(float(stacked.max()), abs=1e-6)
    assert stats["mean"] == pytest.approx(float(stacked.double().mean()), abs=1e-5)
    assert stats["zero_fraction"] == pytest.approx(float((stacked == 0).double().mean()), abs=1e-9)


async def test_atlas_png_tiles_are_channels_scaled_by_their_own_range(
    client: httpx.AsyncClient,
) -> None:
    body = (await post_image(client, "lenet5-mnist", drawn_digit_one())).json()
    base = f"/api/v1/analyses/{body['analysis_id']}/layers/conv2"
    meta = (await client.get(base)).json()
    assert meta["shape"] == [16, 10, 10] and meta["scaling"] == "channel"
    layout = meta["atlas"]
    assert (layout["count"], layout["tile_height"], layout["tile_width"]) == (16, 10, 10)
    png = await client.get(f"{base}/atlas.png")
    assert png.headers["content-type"] == "image/png"
    atlas = np.asarray(Image.open(io.BytesIO(png.content)))
    assert atlas.shape == (layout["height"], layout["width"])
    for c in (0, 5, 15):
        values = np.array(
            (await client.get(f"{base}/channels/{c}")).json()["values"], dtype=np.float32
        )
        lo, hi = meta["minimums"][c], meta["maximums"][c]
        assert (lo, hi) == (pytest.approx(values.min()), pytest.approx(values.max()))
        row, col = divmod(c, layout["cols"])
        y, x = (
            row * (layout["tile_height"] + layout["gap"]),
            col * (layout["tile_width"] + layout["gap"]),
        )
        tile = atlas[y : y + 10, x : x + 10].astype(np.int64)
        expected = (
            np.rint((values - lo) * (255.0 / (hi - lo))) if hi > lo else np.zeros_like(values)
        )
        assert np.abs(tile - expected).max() <= 1


async def test_input_png_is_what_the_network_saw(client: httpx.AsyncClient) -> None:
    body = (await post_image(client, "efficientnet-lite0", sample_photo("coffee.png"))).json()
    response = await client.get(body["input_url"])
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (224, 224)


async def test_vector_layer_channel_is_one_value(client: httpx.AsyncClient) -> None:
    body = (await post_image(client, "lenet5-mnist", drawn_digit_one())).json()
    base = f"/api/v1/analyses/{body['analysis_id']}/layers/fc3"
    channel = (await client.get(f"{base}/channels/1")).json()
    assert channel["shape"] == [1, 1]
    assert channel["values"][0][0] == pytest.approx(body["logits"][1], abs=1e-5)
    assert (await client.get(f"{base}/channels/10")).status_code == 404
    meta = (await client.get(base)).json()
    assert meta["scaling"] == "layer" and meta["atlas"]["count"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/analyses/doesnotexist",
        "/api/v1/analyses/doesnotexist/layers/conv1/atlas.png",
        "/api/v1/analyses/doesnotexist/layers/conv1/channels/0",
    ],
)
async def test_unknown_analysis_is_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "analysis_not_found"


async def test_unknown_layer_of_analysis_is_404(client: httpx.AsyncClient) -> None:
    body = (await post_image(client, "lenet5-mnist", drawn_digit_one())).json()
    base = f"/api/v1/analyses/{body['analysis_id']}/layers"
    for layer in ("nope", "conv1.weight", "%2E%2E"):
        response = await client.get(f"{base}/{layer}/atlas.png")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "layer_not_found"
    # An encoded slash is decoded before routing: no route matches, still a JSON 404.
    response = await client.get(f"{base}/..%2F..%2Fetc%2Fpasswd/atlas.png")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
