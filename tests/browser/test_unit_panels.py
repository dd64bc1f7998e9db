"""The explain panel for every layer kind: the server's unit breakdown, shown exactly.

For the bundled photo model (conv, depthwise conv, batch norm, activation, residual add, pooling,
flatten, block, classifier) and for zoo models served from their specs (reflect / circular padding,
group norm, smooth activations, a squeeze-and-excitation gate, a concatenation), each hovered unit's
panel is compared with GET …/unit: the check line carries the API's `value` and `recomputed`
exactly (data-*) and as text formatted the way the page formats numbers; the total line is the
expected sentence built here from the API's inputs, parameters and operands.
"""

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, screenshot, zoo_server
from tests.browser.pages import analyze_file, api_unit_math, show_unit
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

PHOTO_MODEL = "efficientnet-lite0"
ZOO_MODELS = ["zoo-padding", "zoo-mobilenetv3", "zoo-densenet", "zoo-convnext"]
CHELSEA = str(SKIMAGE_DATA / "chelsea.png")


def exponential(value: float, digits: int) -> str:
    """JavaScript's ``value.toExponential(digits)``: ``1.23e-7``, ``4.5e+5``."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def shown(value: float, digits: int = 6) -> str:
    """A number as the page's ``formatNumber(value, 6)`` writes it (static/js/format.js)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 10**-digits:
        return exponential(value, 2)
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def term(value: float) -> str:
    """A number after an operator inside a formula: negatives in parentheses."""
    return f"({shown(value)})" if value < 0 else shown(value)


def difference(value: float) -> str:
    return "0" if value == 0 else exponential(value, 1)


def operand_name(operand: dict) -> str:
    """How the panel names an operand; the server leaves out (null) one no layer produces."""
    return operand["layer"] or "a value computed inside the block (not a layer of its own)"


def check_panel(
    page: Page, math: dict, *, check: str = "The network computed {value}: difference {diff}."
) -> str:
    """Assert what every explanation ends with; return the total line's text."""
    body = page.locator("#explain-body")
    text = body.inner_text()
    assert "NaN" not in text and "undefined" not in text and "?" not in text, text
    line = page.locator("#unit-check")
    assert float(line.get_attribute("data-value")) == math["value"]
    assert float(line.get_attribute("data-recomputed")) == math["recomputed"]
    expected = check.format(value=shown(math["value"]), diff=difference(math["difference"]))
    expect(line).to_have_text(expected)
    total = body.locator(".total")
    expect(total).to_have_count(1)
    assert float(total.get_attribute("data-total")) == math["recomputed"]
    return total.inner_text()


ShowUnit = Callable[..., tuple[dict, str]]


def unit_viewer(page: Page, api: httpx.Client, analysis: str, card: dict) -> ShowUnit:
    """show(layer, channel, y=0, x=0): point at the unit, check the panel's ending against the
    server's breakdown; returns (breakdown, total line text)."""
    shapes = {layer["name"]: layer["output_shape"] for layer in card["layers"]}

    def show(layer: str, channel: int, y: int = 0, x: int = 0) -> tuple[dict, str]:
        show_unit(page, layer, channel, y, x, shapes[layer])
        math = api_unit_math(api, analysis, layer, channel, y, x)
        return math, check_panel(page, math)

    return show


@pytest.fixture(scope="module")
def photo_card(api: httpx.Client) -> dict:
    return api.get(f"/api/v1/models/{PHOTO_MODEL}").json()


def test_photo_model_units_of_every_kind(page: Page, api: httpx.Client, photo_card: dict) -> None:
    analysis = analyze_file(page, PHOTO_MODEL, CHELSEA)
    show = unit_viewer(page, api, analysis, photo_card)

    # A stem unit on the bottom-right border (TF-"SAME" pads one row and column of zeros there).
    math, total = show("_conv_stem", 7, 111, 111)
    assert math["bias"] is None and math["shape"] == [3, 3, 3]
    assert total == f"Σ all 27 products = {shown(math['recomputed'])} (this layer has no bias)"
    grids = page.locator("#explain-body .conv-row")
    expect(grids).to_have_count(3)
    expect(page.locator("#explain-body .num.pad")).to_have_count(sum(math["padded"]))
    first_cell = grids.nth(0).locator(".num-grid").nth(0).locator(".num").nth(0)
    assert float(first_cell.get_attribute("title").rsplit(": ", 1)[1]) == math["inputs"][0]
    next_steps = page.locator("#explain-body ol.steps li")
    expect(next_steps).to_have_count(2)
    bn = api_unit_math(api, analysis, "_bn0", 7, 111, 111)
    expect(next_steps.nth(0)).to_contain_text(f"_bn0 (BatchNorm2d): f({shown(bn['inputs'][0])}) = ")
    screenshot(page, "unit-conv", page.locator(".panel-pair"))

    math, total = show("_blocks.1._depthwise_conv", 40, 55, 55)
    assert math["shape"] == [1, 3, 3]
    assert total == f"Σ all 9 products = {shown(math['recomputed'])} (this layer has no bias)"
    expect(page.locator("#explain-body .conv-row")).to_have_count(1)

    math, total = show("_blocks.1._bn0", 3, 10, 20)
    p, x = math["parameters"], math["inputs"][0]
    assert total == (
        f"f({shown(x)}) = ({shown(x)} − {term(p['running_mean'])}) / "
        f"√({shown(p['running_var'])} + {shown(p['eps'])}) · {shown(p['gamma'])} + "
        f"{term(p['beta'])} = {shown(math['recomputed'])}"
    )
    expect(page.locator("#explain-body .formula")).to_have_text(f"f(x) = {math['formula']}")
    screenshot(page, "unit-batchnorm", page.locator(".panel-pair"))

    math, total = show("_act_head", 3, 1, 2)
    x = math["inputs"][0]
    assert math["type"] == "ReLU6"
    assert total == f"f({shown(x)}) = min(max(0, {shown(x)}), 6) = {shown(math['recomputed'])}"
    expect(page.locator("#explain-body .parameters")).to_contain_text("max_val = 6")
    screenshot(page, "unit-activation", page.locator(".panel-pair"))
    page.locator("canvas.feature-map").focus()
    page.keyboard.press("ArrowLeft")  # the explanation follows the keyboard too
    page.wait_for_function(
        "() => document.getElementById('explain-body').dataset.view === '_act_head|3|1|1'"
    )
    check_panel(page, api_unit_math(api, analysis, "_act_head", 3, 1, 1))

    math, total = show("_blocks.2.add", 3, 10, 20)
    first, second = math["operands"]
    assert (
        total == f"{shown(first['value'])} + {term(second['value'])} = {shown(math['recomputed'])}"
    )
    items = page.locator("#explain-body ul.steps li")
    expect(items).to_have_text(
        [f"{operand_name(o)}: {shown(o['value'])}" for o in math["operands"]]
    )
    screenshot(page, "unit-add", page.locator(".panel-pair"))

    math, total = show("_blocks.2", 3, 10, 20)
    assert total == f"_blocks.2.add = {shown(math['recomputed'])}"

    math, total = show("_avg_pooling", 3)
    assert math["rule"] == "average (÷ 49)"
    assert total == f"sum {shown(sum(math['inputs']))} ÷ 49 = {shown(math['recomputed'])}"
    expect(page.locator("#explain-body .num")).to_have_count(49)

    math, total = show("_flatten", 5)
    assert math["positions"] == [[5, 0, 0]]
    assert total == f"_avg_pooling (channel 5, y 0, x 0) = {shown(math['recomputed'])}"

    logits = api.get(f"/api/v1/analyses/{analysis}").json()["logits"]
    best = max(range(len(logits)), key=logits.__getitem__)
    math, total = show("_fc", best)
    products, bias = math["products"], math["bias"]
    assert total == (
        f"Σ all 1280 products {shown(sum(products))} + bias {shown(bias)} = "
        f"{shown(math['recomputed'])}"
    )
    rows = page.locator("#explain-body table.product-table:not(.softmax) tbody tr")
    expect(rows).to_have_count(12)
    largest = max(range(len(products)), key=lambda i: abs(products[i]))
    assert rows.nth(0).locator("td").nth(0).inner_text() == f"_flatten[{largest}]"
    assert float(rows.nth(0).locator("td").nth(3).get_attribute("title")) == products[largest]
    rest = sorted(products, key=abs, reverse=True)[12:]
    rest_text = f"+ 1268 more products (smaller contributions) add {shown(sum(rest), 4)}"
    expect(page.locator("#explain-body p.muted", has_text="more products")).to_have_text(rest_text)
    expect(page.locator(".softmax tbody tr")).to_have_count(5)
    screenshot(page, "unit-classifier", page.locator(".panel-pair"))


def test_chinese_names_and_explanations(page: Page, api: httpx.Client) -> None:
    models = {m["id"]: m for m in api.get("/api/v1/models").json()["models"]}
    analysis = analyze_file(page, PHOTO_MODEL, CHELSEA)
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    zh = models[PHOTO_MODEL]["i18n"]["zh"]
    expect(page.locator("#model-description")).to_have_text(zh["description"])
    expect(page.locator(f'#model-select option[value="{PHOTO_MODEL}"]')).to_have_text(zh["name"])
    for model_id, model in models.items():
        name = model.get("i18n", {}).get("zh", {}).get("name", model["name"])
        expect(page.locator(f'#model-select option[value="{model_id}"]')).to_have_text(name)
    card = api.get(f"/api/v1/models/{PHOTO_MODEL}").json()
    shape = next(
        layer["output_shape"] for layer in card["layers"] if layer["name"] == "_blocks.1._bn0"
    )
    show_unit(page, "_blocks.1._bn0", 3, 10, 20, shape)
    math = api_unit_math(api, analysis, "_blocks.1._bn0", 3, 10, 20)
    check_panel(page, math, check="网络算出的是 {value}：相差 {diff}。")
    expect(page.locator("#explain-body")).to_contain_text(
        "running_mean 和 running_var 在训练时测得"
    )
    screenshot(page, "unit-chinese", page.locator(".panel-pair"))
    page.locator("#lang-toggle").click()
    expect(page.locator("#model-description")).to_have_text(models[PHOTO_MODEL]["description"])


@pytest.fixture(scope="module")
def zoo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with only zoo models, for layer kinds the bundled ones lack."""
    with zoo_server(tmp_path_factory, ZOO_MODELS) as url:
        yield url


@pytest.fixture(scope="module")
def zoo_api(zoo_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zoo_url, timeout=60) as client:
        yield client


def open_zoo_model(page: Page, zoo_api: httpx.Client, zoo_url: str, model_id: str) -> ShowUnit:
    """Analyze chelsea with a zoo model; returns its `unit_viewer`."""
    card = zoo_api.get(f"/api/v1/models/{model_id}").json()
    analysis = analyze_file(page, model_id, CHELSEA, url=f"{zoo_url}/")
    return unit_viewer(page, zoo_api, analysis, card)


def padded_cells(page: Page) -> list[tuple[str, float]]:
    """(text, exact value from the title) of every hatched cell of the explanation."""
    cells = page.locator("#explain-body .num.pad")
    found = []
    for i in range(cells.count()):
        cell = cells.nth(i)
        found.append((cell.inner_text(), float(cell.get_attribute("title").rsplit(": ", 1)[1])))
    return found


def test_padding_modes_norms_and_smooth_activations(
    page: Page, zoo_api: httpx.Client, zoo_url: str, problems: PageProblems
) -> None:
    show = open_zoo_model(page, zoo_api, zoo_url, "zoo-padding")
    for layer, mode in [("conv_reflect", "reflect"), ("conv_circular", "circular")]:
        math, total = show(layer, 1, 0, 0)
        assert math["padding_mode"] == mode
        assert total.endswith(f"= {shown(math['recomputed'])}")
        padded = [v for v, pad in zip(math["inputs"], math["padded"], strict=True) if pad]
        cells = padded_cells(page)
        assert cells and all(value in padded for _, value in cells)
        assert any(text != "0" for text, _ in cells), "copied values, not zeros"
        expect(page.locator("#explain-body")).to_contain_text(f"{mode} padding fills them")
        if mode == "reflect":
            screenshot(page, "unit-reflect-padding", page.locator(".panel-pair"))

    math, total = show("norm1", 1, 3, 4)
    p, x = math["parameters"], math["inputs"][0]
    assert total.startswith(f"f({shown(x)}) = ({shown(x)} − {term(p['mean'])}) / ")
    expect(page.locator("#explain-body")).to_contain_text(
        f"the {p['group_size']} numbers normalized together"
    )
    for layer, formula in [("act1", "negative_slope"), ("act3", "sigmoid"), ("act5", "Φ")]:
        math, total = show(layer, 1, 3, 4)
        assert formula in math["formula"]
        assert total.startswith(f"f({shown(math['inputs'][0])}) = ")
        assert total.endswith(f" = {shown(math['recomputed'])}")
    expect(page.locator("#explain-body .parameters")).to_have_text("with approximate = none")

    math, total = show("pool_ceil", 1, 16, 16)
    assert math["rule"] == "max" and None in math["inputs"]
    assert total == f"largest = {shown(math['recomputed'])}"
    expect(page.locator("#explain-body .num.pad")).to_have_count(math["inputs"].count(None))
    # The attribution panel asks for each unit's effective receptive field; the server rightly
    # refuses it behind circular padding (the image wraps around), and the panel says so.
    refused = "receptive_field_unavailable"
    problems.failed_requests[:] = [r for r in problems.failed_requests if refused not in r]
    problems.console[:] = [m for m in problems.console if "effective-receptive-field" not in m]


def test_gate_concatenation_and_layer_norm(page: Page, zoo_api: httpx.Client, zoo_url: str) -> None:
    show = open_zoo_model(page, zoo_api, zoo_url, "zoo-mobilenetv3")
    math, total = show("features.1.block.1.mul", 1, 2, 2)
    gate, feature = math["operands"]
    assert gate["broadcast"] and not feature["broadcast"]
    assert (
        total == f"{shown(gate['value'])} × {term(feature['value'])} = {shown(math['recomputed'])}"
    )
    expect(page.locator("#explain-body")).to_contain_text("it sees the whole image")
    screenshot(page, "unit-gate", page.locator(".panel-pair"))
    math, total = show("features.0.2", 1, 0, 0)
    assert math["type"] == "Hardswish"
    x = shown(math["inputs"][0])
    assert total == f"f({x}) = {x} · min(max({x} + 3, 0), 6) / 6 = {shown(math['recomputed'])}"

    show = open_zoo_model(page, zoo_api, zoo_url, "zoo-densenet")
    math, total = show("features.denseblock1.denselayer2.cat", 12, 1, 1)
    (source,) = math["operands"]
    name = operand_name(source)
    assert total == f"{name} · channel {source['channel']} = {shown(math['recomputed'])}"
    expect(page.locator("#explain-body")).to_contain_text(
        f"is channel {source['channel']} of {name}"
    )

    show = open_zoo_model(page, zoo_api, zoo_url, "zoo-convnext")
    math, total = show("stages.0.0.pwconv1", 1, 1, 1)
    assert total == (
        f"Σ all 16 products {shown(sum(math['products']))} + bias {shown(math['bias'])} = "
        f"{shown(math['recomputed'])}"
    )
    math, total = show("stages.0.0.norm", 1, 1, 1)
    assert math["type"] == "LayerNorm"
    assert total.endswith(f"= {shown(math['recomputed'])}")
    screenshot(page, "unit-layer-norm", page.locator(".panel-pair"))
