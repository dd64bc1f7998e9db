"""Model-level routes: feature visualization (background, disk-cached), top patches, filters."""

import asyncio
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from app.config import REPO_ROOT, Settings
from app.core.attribution.random_filters import neighbour_correlation
from app.core.attribution.random_init import architecture_factory, random_init_copy
from app.core.attribution.top_patches import load_top_patches
from app.core.receptive_field import receptive_field_box
from app.core.registry import ModelRegistry

pytestmark = pytest.mark.anyio

LENET = "/api/v1/models/lenet5-mnist"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(feature_vis_dir=tmp_path / "feature-vis")


def png_array(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content), formats=["PNG"]))


async def test_feature_vis_is_computed_in_the_background_then_served_from_disk(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    url = f"{LENET}/layers/conv2/channels/4/feature-vis?steps=3"
    not_yet = await client.get(f"{LENET}/layers/conv2/channels/4/feature-vis.png?steps=3")
    assert not_yet.json()["error"]["code"] == "feature_vis_not_ready"

    first = await client.get(url)
    assert first.status_code == 202
    assert first.json()["status"] == "computing" and first.headers["retry-after"] == "3"
    for _ in range(600):
        response = await client.get(url)
        if response.status_code != 202:
            break
        await asyncio.sleep(0.05)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "done"
    assert body["final_activation"] > body["start_activation"]
    assert png_array(await client.get(body["image_url"])).shape == (28, 28)
    assert len(list(settings.feature_vis_dir.glob("*.png"))) == 1
    other_steps = await client.get(f"{LENET}/layers/conv2/channels/4/feature-vis?steps=4")
    assert other_steps.status_code == 202  # options are part of the cache key


async def test_feature_vis_rejects_unknown_channels_and_layers(client: httpx.AsyncClient) -> None:
    for path, code in (
        ("layers/conv2/channels/16/feature-vis", "channel_not_found"),
        ("layers/fc3/channels/10/feature-vis", "channel_not_found"),
        ("layers/nope/channels/0/feature-vis", "layer_not_found"),
    ):
        response = await client.get(f"{LENET}/{path}")
        assert (response.status_code, response.json()["error"]["code"]) == (404, code)


async def test_top_patches_are_the_shipped_ones_with_their_boxes(
    client: httpx.AsyncClient, registry: ModelRegistry
) -> None:
    model = registry.get("lenet5-mnist")
    assert model.spec.top_patches == REPO_ROOT / "models" / "lenet5-mnist-top-patches.json"
    shipped = load_top_patches(model.spec.top_patches, model.weights_sha256).layers["conv2"]
    body = (await client.get(f"{LENET}/layers/conv2/channels/5/top-patches")).json()
    field = model.layer_index["conv2"].receptive_field.rf
    assert body["patch_size"] == [14, 14] and len(body["patches"]) == 9
    for rank, item in enumerate(body["patches"]):
        digit, label, y, x = shipped.sources[5, rank].tolist()
        assert (item["rank"], item["digit_index"], item["label"]) == (rank, digit, label)
        assert item["activation"] == float(shipped.activations[5, rank])
        box = receptive_field_box(field, y, x, (28, 28))
        assert item["box"] == {
            "top": box.top,
            "left": box.left,
            "bottom": box.bottom,
            "right": box.right,
        }
    grid = png_array(await client.get(body["grid_url"]))
    assert grid.shape == (3 * 14 + 2, 3 * 14 + 2)
    np.testing.assert_array_equal(grid[15:29, 15:29], shipped.patches[5, 4])  # the centre tile
    activations = [item["activation"] for item in body["patches"]]
    assert activations == sorted(activations, reverse=True)


async def test_top_patches_unavailable_cases(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/models/efficientnet-lite0/layers/_conv_stem/channels/0/top-patches",
        f"{LENET}/layers/fc1/channels/0/top-patches",
    ):
        response = await client.get(path)
        assert response.json()["error"]["code"] == "top_patches_unavailable", path
    response = await client.get(f"{LENET}/layers/conv1/channels/6/top-patches")
    assert response.json()["error"]["code"] == "channel_not_found"


async def test_first_layer_filters_trained_beside_random(
    client: httpx.AsyncClient, registry: ModelRegistry
) -> None:
    model = registry.get("lenet5-mnist")
    body = (await client.get(f"{LENET}/first-layer-filters")).json()
    assert (body["layer"], body["shape"], body["random_seed"]) == ("conv1", [6, 1, 5, 5], 0)
    trained = model.module.conv1.weight.detach().numpy()
    twin = random_init_copy(architecture_factory(model), seed=0)
    random = twin.conv1.weight.numpy()
    assert body["trained"]["neighbour_correlation"] == pytest.approx(neighbour_correlation(trained))
    assert body["random"]["neighbour_correlation"] == pytest.approx(neighbour_correlation(random))
    assert body["trained"]["neighbour_correlation"] > body["random"]["neighbour_correlation"] + 0.2
    assert body["random"]["maximums"] == pytest.approx(np.abs(random).reshape(6, -1).max(1))
    assert body["trained"]["atlas_url"] == f"{LENET}/layers/conv1/filters.png"
    atlas = png_array(await client.get(body["random"]["atlas_url"]))
    assert atlas.shape == (body["random"]["atlas"]["height"], body["random"]["atlas"]["width"])
    stem = (await client.get("/api/v1/models/efficientnet-lite0/first-layer-filters")).json()
    assert (stem["layer"], stem["shape"]) == ("_conv_stem", [32, 3, 3, 3])
