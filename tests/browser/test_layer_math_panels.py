"""The layer-math panel against the API: im2col, folded batch norm and separable pairs.

For the bundled photo model (a stem conv with batch norm, a depthwise conv, a pointwise conv of a
separable pair) and the digit model (a plain conv with bias, nothing to fold, no pairs): the
matrix shapes are the real layer's, the unit's row · its filter's column (+ bias) equals the
value the network computed, the folded conv equals batch norm after the conv, each pair's
parameter count equals its two layers' parameters, and the traced unit reads exactly what the
step before it produced.
"""

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from app.config import REPO_ROOT
from tests.browser.conftest import screenshot
from tests.browser.pages import TIMEOUT_MS, analyze_file, api_unit_math, api_unit_value, show_unit
from tests.browser.site_pages import use_chinese
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

PHOTO, DIGIT = "efficientnet-lite0", "lenet5-mnist"
CHELSEA = str(SKIMAGE_DATA / "chelsea.png")
DIGIT_SEVEN = str(REPO_ROOT / "static" / "samples" / "digits" / "digit-7.png")
TOLERANCE = 1e-5


def point_at(page: Page, card: dict, layer: str, channel: int, y: int, x: int) -> None:
    """Show the unit and wait until the layer-math panel follows it."""
    shape = next(item["output_shape"] for item in card["layers"] if item["name"] == layer)
    show_unit(page, layer, channel, y, x, shape)
    page.wait_for_function(
        "view => document.getElementById('layer-math-panel').dataset.view === view",
        arg=f"{layer}|{channel}|{y}|{x}",
        timeout=TIMEOUT_MS,
    )


def get(api: httpx.Client, url: str, **params: int) -> dict:
    response = api.get(url, params=params)
    response.raise_for_status()
    return response.json()


def row_numbers(table: Locator, row: int) -> list[float]:
    """The exact numbers (cell titles) of one row of a number-rows table."""
    cells = table.locator("tbody tr").nth(row).locator("td")
    return [float(title) for title in cells.evaluate_all("cells => cells.map((c) => c.title)")]


def check_im2col(page: Page, api: httpx.Client, analysis: str, layer: str, unit: tuple) -> dict:
    """The im2col card against GET …/im2col and the layer's real output; returns the body."""
    channel, y, x = unit
    body = get(api, f"/api/v1/analyses/{analysis}/layers/{layer}/im2col", channel=channel, y=y, x=x)
    shapes = page.locator("#im2col-card .im2col-shapes")
    for key, field in [("rows", "rows"), ("columns", "columns"), ("filters", "filters_in_group")]:
        expect(shapes).to_have_attribute(f"data-{key}", str(body[field]))
    expect(shapes).to_have_attribute("data-groups", str(body["groups"]))
    vectors = page.locator("#im2col-card .number-rows").nth(1)
    assert row_numbers(vectors, 0) == body["row"]
    assert row_numbers(vectors, 1) == body["column"]
    total = page.locator("#im2col-card .im2col-total")
    assert float(total.get_attribute("data-dot")) == body["dot"]
    shown_total = float(total.get_attribute("data-total"))
    assert shown_total == body["dot"] + (body["bias"] or 0.0)
    value = api_unit_value(api, analysis, layer, channel, y, x)
    assert body["value"] == value
    assert abs(shown_total - value) < TOLERANCE, "row · column + bias is the unit's value"
    expect(page.locator("#im2col-card tr.current th")).to_contain_text(f"row {body['row_index']} ")
    return body


def test_photo_model_im2col_folded_and_separable(page: Page, api: httpx.Client) -> None:
    card = get(api, f"/api/v1/models/{PHOTO}")
    params = {layer["name"]: layer["params"] for layer in card["layers"]}
    analysis = analyze_file(page, PHOTO, CHELSEA)

    point_at(page, card, "_conv_stem", 3, 10, 12)
    body = check_im2col(page, api, analysis, "_conv_stem", (3, 10, 12))
    assert (body["rows"], body["columns"], body["filters_in_group"]) == (112 * 112, 3 * 3 * 3, 32)
    expect(page.locator("#im2col-card .im2col-shapes")).to_contain_text(
        "X 12544 × 27 · W 27 × 32 = 12544 × 32"
    )
    url = f"/api/v1/analyses/{analysis}/layers/_conv_stem/folded"
    folded = get(api, url, channel=3, y=10, x=12)
    weights = page.locator("#folded-card .number-rows")
    assert row_numbers(weights, 0) == folded["raw_weights"]
    assert row_numbers(weights, 1) == folded["folded_weights"]
    unfolded = float(page.locator("#folded-card .folded-unfolded").get_attribute("data-value"))
    refolded = float(page.locator("#folded-card .folded-value").get_attribute("data-value"))
    assert unfolded == folded["unfolded_value"] == api_unit_value(api, analysis, "_bn0", 3, 10, 12)
    assert refolded == folded["folded_value"]
    assert abs(refolded - unfolded) < TOLERANCE, "the folded conv equals batch norm after the conv"
    expect(page.locator("#separable-card")).to_be_visible()
    screenshot(page, "layer-math-stem", page.locator("#layer-math-panel"))

    point_at(page, card, "_blocks.1._depthwise_conv", 40, 20, 30)
    body = check_im2col(page, api, analysis, "_blocks.1._depthwise_conv", (40, 20, 30))
    assert (body["groups"], body["group"], body["columns"], body["filters_in_group"]) == (
        96,
        40,
        9,
        1,
    )
    expect(page.locator("#im2col-card .im2col-shapes")).to_contain_text("96 groups")

    point_at(page, card, "_blocks.1._project_conv", 3, 10, 12)
    check_im2col(page, api, analysis, "_blocks.1._project_conv", (3, 10, 12))
    pairs = get(api, f"/api/v1/models/{PHOTO}/separable")["pairs"]
    rows = page.locator("#separable-card .separable-table tbody tr")
    expect(rows).to_have_count(len(pairs))
    for index, pair in enumerate(pairs):
        row = rows.nth(index)
        both_layers = params[pair["depthwise"]] + params[pair["pointwise"]]
        assert int(row.get_attribute("data-params")) == pair["params"] == both_layers
        kernel = pair["kernel"][0] * pair["kernel"][1]
        assert int(row.get_attribute("data-full-params")) == (
            pair["in_channels"] * pair["out_channels"] * kernel
        )
        assert int(row.get_attribute("data-macs")) == pair["macs"]
    expect(page.locator("#separable-card tr.current")).to_have_attribute(
        "data-depthwise", "_blocks.1._depthwise_conv"
    )
    trace = page.locator("#separable-card ol.separable-trace")
    strongest = int(trace.get_attribute("data-channel"))
    pointwise = api_unit_math(api, analysis, "_blocks.1._project_conv", 3, 10, 12)
    products = [abs(p) for p in pointwise["products"]]
    assert strongest == products.index(max(products))
    depthwise = api_unit_math(api, analysis, "_blocks.1._depthwise_conv", strongest, 10, 12)
    assert (
        float(trace.locator(".trace-depthwise").get_attribute("data-value")) == (depthwise["value"])
    )
    reads = float(trace.get_attribute("data-reads"))
    assert reads == api_unit_value(api, analysis, "_blocks.1._depthwise_act", strongest, 10, 12)
    assert reads == pointwise["inputs"][strongest], "the pointwise step reads the depthwise output"
    assert (
        float(trace.locator(".trace-pointwise").get_attribute("data-total"))
        == (pointwise["recomputed"])
    )
    screenshot(page, "layer-math-separable", page.locator("#layer-math-panel"))

    page.locator("#separable-card button", has_text="_blocks.3._depthwise_conv").click()
    page.wait_for_function(
        "() => document.getElementById('explain-body').dataset.view?.startsWith("
        "'_blocks.3._depthwise_conv|')",
        timeout=TIMEOUT_MS,
    )


def test_digit_model_has_im2col_only(page: Page, api: httpx.Client) -> None:
    card = get(api, f"/api/v1/models/{DIGIT}")
    analysis = analyze_file(page, DIGIT, DIGIT_SEVEN)
    point_at(page, card, "conv2", 5, 4, 6)
    body = check_im2col(page, api, analysis, "conv2", (5, 4, 6))
    assert body["bias"] is not None
    assert (body["rows"], body["columns"], body["filters_in_group"]) == (10 * 10, 6 * 5 * 5, 16)
    expect(page.locator("#folded-card")).to_be_hidden()
    expect(page.locator("#separable-card")).to_be_hidden()
    point_at(page, card, "pool1", 0, 1, 1)
    expect(page.locator("#layer-math-panel")).to_be_hidden()


def test_the_pairs_table_fits_its_card_in_chinese_at_a_laptops_width(
    page: Page, api: httpx.Client
) -> None:
    """Chinese headers are the widest: each pair breaks after its arrow instead of the table
    scrolling sideways (it overflowed by 14 px at 1368 px before)."""
    use_chinese(page)
    page.set_viewport_size({"width": 1368, "height": 900})
    card = get(api, f"/api/v1/models/{PHOTO}")
    analyze_file(page, PHOTO, CHELSEA)
    point_at(page, card, "_blocks.1._project_conv", 3, 10, 12)
    region = page.locator("#separable-card .table-scroll-x")
    expect(region).to_be_visible()
    assert region.evaluate("r => r.scrollWidth - r.clientWidth") <= 0
