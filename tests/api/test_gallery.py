"""Gallery API and pages: published parameter totals and receptive fields, layer tables."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_gallery_lists_the_seven_networks_with_published_totals(
    client: httpx.AsyncClient,
) -> None:
    networks = (await client.get("/api/v1/gallery")).json()["networks"]
    totals = {n["id"]: (n["total_params"], n["published_params"]) for n in networks}
    assert totals == {
        "lenet5": (61_706, 61_706),
        "alexnet": (61_100_840, 61_100_840),
        "zfnet": (62_357_608, None),
        "vgg16": (138_357_544, 138_357_544),
        "googlenet": (6_624_904, 6_624_904),
        "resnet50": (25_557_032, 25_557_032),
        "densenet121": (7_978_856, 7_978_856),
    }
    assert [n["diagram"] for n in networks if n["diagram"]] == ["inception", "residual", "dense"]


async def test_vgg16_detail_has_the_layer_table_and_distill_landmarks(
    client: httpx.AsyncClient,
) -> None:
    detail = (await client.get("/api/v1/gallery/vgg16")).json()
    landmarks = {m["layer"]: (m["published_rf"], m["computed_rf"]) for m in detail["landmarks"]}
    assert landmarks == {"conv5_3": (196, 196), "pool5": (212, 212)}
    layers = {layer["name"]: layer for layer in detail["layers"]}
    assert layers["conv5_3"]["receptive_field"]["size"] == [196, 196]
    assert layers["conv5_3"]["output_shape"] == [512, 14, 14]
    assert layers["fc6"]["params"] == 102_764_544
    assert detail["layer_count"] == len(detail["layers"]) == 38  # 37 modules + nn.Flatten


async def test_depth_filter_keeps_the_blocks(client: httpx.AsyncClient) -> None:
    top = (await client.get("/api/v1/gallery/resnet50", params={"depth": 1})).json()
    names = [layer["name"] for layer in top["layers"]]
    assert names == ["conv1", "bn1", "relu", "maxpool", "avgpool", "flatten", "fc"]  # stages: groups
    blocks = (await client.get("/api/v1/gallery/resnet50", params={"depth": 2})).json()
    assert "layer4.2" in [layer["name"] for layer in blocks["layers"]]
    assert blocks["layer_count"] > len(blocks["layers"])
    assert {m["layer"]: m["computed_rf"] for m in blocks["landmarks"]} == {"layer4.2": 427}
    assert (await client.get("/api/v1/gallery/nope")).status_code == 404


async def test_gallery_pages(client: httpx.AsyncClient) -> None:
    index = await client.get("/gallery")
    assert index.status_code == 200 and 'href="/gallery/densenet121"' in index.text
    assert "138,357,544" in index.text
    page = await client.get("/gallery/googlenet")
    assert page.status_code == 200 and 'data-network="googlenet"' in page.text
    assert 'data-diagram="inception"' in page.text
    assert '<script type="module" src="/static/js/lessons/gallery-page.js">' in page.text
