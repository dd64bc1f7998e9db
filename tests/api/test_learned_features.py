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
from app.main import create_app

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
    assert first.json()["status"] == "computing" and first.headers["retry-after"] == "1"
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


async def test_the_filter_verdict_and_numbers_are_what_the_weights_support(
    client: httpx.AsyncClient,
) -> None:
    """Chance-corrected: LeNet's trained filters are smooth; EfficientNet's 3×3 stem is only a
    little smoother than its random twin (the panel once called both "smooth detectors" while
    showing −4.95e-3 for the trained stem and −0.1 for random noise)."""
    lenet = (await client.get(f"{LENET}/first-layer-filters")).json()
    assert lenet["verdict"] == "smooth"
    assert lenet["trained"]["neighbour_correlation"] == pytest.approx(0.418, abs=0.001)
    assert lenet["random"]["neighbour_correlation"] == pytest.approx(0.079, abs=0.001)
    stem = (await client.get("/api/v1/models/efficientnet-lite0/first-layer-filters")).json()
    assert stem["verdict"] == "slightly_smoother"
    assert stem["trained"]["neighbour_correlation"] == pytest.approx(0.107, abs=0.001)
    assert stem["random"]["neighbour_correlation"] == pytest.approx(0.018, abs=0.001)


async def wait_done(client: httpx.AsyncClient, url: str) -> dict:
    for _ in range(1200):
        response = await client.get(url)
        if response.status_code != 202:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never finished")


async def test_steps_are_capped_by_the_api_and_by_the_setting(
    client: httpx.AsyncClient, app
) -> None:
    """Issue 15: 16 jobs of 1,024 steps were accepted (~80 min of a core)."""
    for _ in range(16):
        response = await client.get(f"{LENET}/layers/conv2/channels/4/feature-vis?steps=1024")
        assert response.status_code == 422
    assert app.state.attribution.jobs.pending == 0
    limited = Settings(feature_vis_dir=app.state.settings.feature_vis_dir, feature_vis_max_steps=64)
    app.state.settings = limited
    over = await client.get(f"{LENET}/layers/conv2/channels/4/feature-vis?steps=65")
    assert (over.status_code, over.json()["error"]["code"]) == (422, "too_many_steps")


DEEP = "/api/v1/models/efficientnet-lite0/layers/_blocks.15/channels"


async def test_one_client_gets_its_share_of_jobs_and_the_rest_are_refused(
    client: httpx.AsyncClient, app
) -> None:
    accepted = [await client.get(f"{DEEP}/{channel}/feature-vis?steps=256") for channel in (0, 1)]
    assert [response.status_code for response in accepted] == [202, 202]
    refused = await client.get(f"{DEEP}/2/feature-vis?steps=256")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "too_many_jobs")
    assert int(refused.headers["retry-after"]) > 0
    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await other.get(f"{DEEP}/2/feature-vis?steps=256")).status_code == 202
        assert (await other.delete(f"{DEEP}/2/feature-vis?steps=256")).json()["status"] == (
            "cancelled"
        )
    for channel in (0, 1):
        await client.delete(f"{DEEP}/{channel}/feature-vis?steps=256")


async def test_a_feature_vis_job_shows_its_steps_and_stops_when_cancelled(
    client: httpx.AsyncClient, app
) -> None:
    url = f"{DEEP}/7/feature-vis?steps=256"
    first = await client.get(url)
    assert first.status_code == 202 and first.json()["steps"] == 256
    for _ in range(600):
        body = (await client.get(url)).json()
        if body["done"] >= 2:
            break
        await asyncio.sleep(0.05)
    assert 2 <= body["done"] < 256 and body["status"] == "computing"
    jobs = app.state.attribution.jobs
    cancelled = await client.delete(url)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    for _ in range(40):
        if jobs.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert jobs.pending == 0  # the worker stopped within 2 s (a step here takes ~0.1 s)
    gone = await client.delete(url)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "feature_vis_not_running")


async def test_feature_vis_says_when_it_measured_before_the_relu(client: httpx.AsyncClient) -> None:
    relu = await wait_done(client, f"{LENET}/layers/relu1/channels/1/feature-vis?steps=2")
    conv = await wait_done(client, f"{LENET}/layers/conv1/channels/1/feature-vis?steps=2")
    assert relu["measured_before_relu"] and not conv["measured_before_relu"]
    assert relu["start_activation"] == conv["start_activation"]  # conv1's output is relu1's input


@pytest.mark.parametrize("budget", [6_000])
async def test_the_disk_cache_stays_within_its_bytes(
    tmp_path, registry: ModelRegistry, budget: int
) -> None:
    """Issue 15: 100 cheap jobs wrote 190 files in 13.5 s and nothing was ever deleted."""
    settings = Settings(
        feature_vis_dir=tmp_path / "fv", feature_vis_cache_bytes=budget, feature_vis_queue_size=64
    )
    app = create_app(settings, registry=registry)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for channel in range(16):
                await wait_done(
                    http, f"{LENET}/layers/conv2/channels/{channel}/feature-vis?steps=1"
                )
                on_disk = sum(path.stat().st_size for path in (tmp_path / "fv").iterdir())
                assert on_disk <= budget or len(list((tmp_path / "fv").iterdir())) == 2
            kept = sorted((tmp_path / "fv").glob("*.json"))
            assert 1 <= len(kept) < 16
            newest = await http.get(f"{LENET}/layers/conv2/channels/15/feature-vis?steps=1")
            assert newest.status_code == 200  # the latest one is always kept
