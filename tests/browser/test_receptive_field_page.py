"""Receptive fields on the Analyze page agree with the server for every layer, gates and crops too.

The page computes each unit's box itself (static/js/panels/receptive_field.js, one formula for
local and global fields, cut to what the units see together); it is compared with the server's
`/receptive-field` box at three units of every layer of the bundled photo model and of two zoo
models: SqueezeNet, whose unpadded stride never reads the image's last row and column, and a
MobileNetV3 with squeeze-excitation gates. The words under the box and on the layer strip say
what a global field sees and that a gated unit hears every pixel, in both languages.
"""

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot, zoo_server
from tests.browser.pages import analyze_file, open_layer
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

ZOO_MODELS = ("zoo-squeezenet", "zoo-mobilenetv3")
CHELSEA = str(SKIMAGE_DATA / "chelsea.png")

PAGE_BOXES = """async ([layers, size]) => {
  const { receptiveFieldBox } = await import("/static/js/panels/receptive_field.js");
  return layers.map(([rf, units]) => units.map(([y, x]) => receptiveFieldBox(rf, y, x, size)));
}"""


@pytest.fixture(scope="module")
def zoo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with zoo_server(tmp_path_factory, ZOO_MODELS) as url:
        yield url


def units_of(shape: list[int]) -> list[tuple[int, int]]:
    """The first, a middle and the last unit of a map (one unit for a vector)."""
    if len(shape) != 3:
        return [(0, 0)]
    height, width = shape[1:]
    return [(0, 0), (height // 2, width // 3), (height - 1, width - 1)]


def check_every_layer(page: Page, client: httpx.Client, model_id: str) -> dict:
    card = client.get(f"/api/v1/models/{model_id}").json()
    layers = [layer for layer in card["layers"] if layer["receptive_field"]["size"]]
    size = [card["input"]["height"], card["input"]["width"]]
    requests = [(layer["receptive_field"], units_of(layer["output_shape"])) for layer in layers]
    shown = page.evaluate(PAGE_BOXES, [requests, size])
    for layer, (_, units), boxes in zip(layers, requests, shown, strict=True):
        for (y, x), box in zip(units, boxes, strict=True):
            url = f"/api/v1/models/{model_id}/layers/{layer['name']}/receptive-field"
            server = client.get(url, params={"y": y, "x": x}).json()["box"]
            assert box == server, (model_id, layer["name"], y, x)
    return card


def test_every_box_matches_the_server(page: Page, api: httpx.Client, zoo_url: str) -> None:
    page.goto("/")
    check_every_layer(page, api, "efficientnet-lite0")
    page.goto(f"{zoo_url}/")
    with httpx.Client(base_url=zoo_url, timeout=60) as zoo:
        squeezenet = check_every_layer(page, zoo, "zoo-squeezenet")
        mobilenet = check_every_layer(page, zoo, "zoo-mobilenetv3")
    fields = [layer["receptive_field"] for layer in squeezenet["layers"]]
    assert any(rf["is_global"] and rf["seen"] for rf in fields), "a global field that is cut"
    assert any(layer["receptive_field"]["gated"] for layer in mobilenet["layers"]), "a gate"


def first_layer(card: dict, test: Callable[[dict], bool]) -> dict:
    return next(layer for layer in card["layers"] if test(layer))


def is_global(layer: dict) -> bool:
    return layer["receptive_field"]["is_global"]


def test_words_for_global_and_gated_fields(page: Page, zoo_url: str) -> None:
    with httpx.Client(base_url=zoo_url, timeout=60) as zoo:
        squeezenet = zoo.get("/api/v1/models/zoo-squeezenet").json()
        mobilenet = zoo.get("/api/v1/models/zoo-mobilenetv3").json()
    rf_text = page.locator("#rf-text")

    cut = first_layer(
        squeezenet, lambda layer: is_global(layer) and len(layer["output_shape"]) == 3
    )
    seen = cut["receptive_field"]["seen"]
    side = f"{seen['bottom'] + 1}×{seen['right'] + 1}"
    analyze_file(page, "zoo-squeezenet", CHELSEA, url=f"{zoo_url}/")
    open_layer(page, cut["name"])
    expect(rf_text).to_have_text(
        f"This unit sees everything the network reads of the image: {side} px, rows 0–"
        f"{seen['bottom']}, columns 0–{seen['right']} (the rest is never read)."
    )
    block = page.locator(f'.layer-block[data-layer="{cut["name"]}"]')
    expect(block).to_contain_text(f"sees {side} px: all the network reads")

    gated = first_layer(
        mobilenet,
        lambda layer: (
            layer["receptive_field"]["gated"] and not is_global(layer) and layer["kind"] == "conv"
        ),
    )
    analyze_file(page, "zoo-mobilenetv3", CHELSEA, url=f"{zoo_url}/")
    open_layer(page, gated["name"])
    expect(rf_text).to_contain_text(
        "It also passes through a gate (squeeze-and-excitation) computed from everything the "
        "units before it saw, so every pixel the network reads can change it a little."
    )
    rf = gated["receptive_field"]
    block = page.locator(f'.layer-block[data-layer="{gated["name"]}"]')
    side = f"{rf['size'][0]:g}×{rf['size'][1]:g}"
    expect(block).to_contain_text(f"sees {side} px + a whole-image gate")
    screenshot(page, "receptive-field-gated", page.locator(".panel-pair"))

    page.locator("#lang-toggle").click()
    expect(rf_text).to_contain_text("它还经过一个门控（挤压-激励）")
    expect(block).to_contain_text("+ 全图门控")
