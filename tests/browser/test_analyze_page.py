"""The Analyze page in a real Chromium and a real server: what a student sees is what the API says.

Numbers shown are compared with independent API reads: predictions, receptive-field boxes (also
found in the drawn pixels), and unit arithmetic sums (to 1e-4) for convolutions of every flavour.
"""

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, screenshot
from tests.browser.pages import (
    api_unit_value,
    draw,
    highlight_near,
    hover_unit,
    open_layer,
    pick_channel,
    send_image,
    shown_predictions,
    wait_for_analysis,
    wait_for_layer,
)
from tests.conftest import SKIMAGE_DATA, sample_photo

pytestmark = pytest.mark.browser

CAT_LABELS = ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")

# (layer, channel, unit y, unit x): a stem unit on the padded border, a stride-2 depthwise unit
# behind a hidden TF-"SAME" pad, and a 1×1 projection over 144 input channels.
CONV_UNITS = [
    ("_conv_stem", 7, 111, 111),
    ("_blocks.1._depthwise_conv", 40, 55, 55),
    ("_blocks.2._project_conv", 3, 10, 20),
]


def analyze_chelsea(page: Page) -> str:
    page.goto("/")
    page.select_option("#model-select", "efficientnet-lite0")
    page.set_input_files("#file-input", str(SKIMAGE_DATA / "chelsea.png"))
    return wait_for_analysis(page)


def test_photo_predictions_receptive_fields_and_unit_arithmetic(
    page: Page, api: httpx.Client
) -> None:
    analysis = analyze_chelsea(page)
    expected = api.post(
        "/api/v1/models/efficientnet-lite0/analyze",
        files={"image": ("chelsea.png", sample_photo("chelsea.png"), "image/png")},
    ).json()
    assert expected["analysis_id"] == analysis
    shown = shown_predictions(page)
    assert [label for label, _ in shown] == [p["label"] for p in expected["predictions"]]
    assert [p for _, p in shown] == pytest.approx(
        [p["probability"] for p in expected["predictions"]]
    )
    assert any(label in CAT_LABELS for label, _ in shown)
    wait_for_layer(page, "_conv_stem")
    assert page.evaluate("window.scrollY") == 0  # the page does not jump when results arrive
    screenshot(page, "photo-overview")
    card = api.get("/api/v1/models/efficientnet-lite0").json()
    shapes = {layer["name"]: layer["output_shape"] for layer in card["layers"]}

    for layer, channel, y, x in CONV_UNITS:
        open_layer(page, layer)
        pick_channel(page, layer, channel)
        hover_unit(page, layer, channel, y, x, shapes[layer][1:])
        total = float(page.locator("#conv-total").get_attribute("data-total"))
        assert total == pytest.approx(api_unit_value(api, analysis, layer, channel, y, x), abs=1e-4)

        rf = api.get(
            f"/api/v1/models/efficientnet-lite0/layers/{layer}/receptive-field?y={y}&x={x}"
        ).json()
        canvas = page.locator("#rf-canvas")
        as_list = lambda b: [b["top"], b["left"], b["bottom"], b["right"]]  # noqa: E731
        assert [int(v) for v in canvas.get_attribute("data-box").split(",")] == as_list(rf["box"])
        clipped = rf["clipped"]
        assert [int(v) for v in canvas.get_attribute("data-clipped").split(",")] == as_list(clipped)
        scale = float(canvas.get_attribute("data-scale"))
        origin = float(canvas.get_attribute("data-origin"))
        left, right = origin + clipped["left"] * scale, origin + (clipped["right"] + 1) * scale
        top, bottom = origin + clipped["top"] * scale, origin + (clipped["bottom"] + 1) * scale
        middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
        for edge in ((left, middle_y), (right, middle_y), (middle_x, top), (middle_x, bottom)):
            assert highlight_near(page, "#rf-canvas", *edge), (layer, edge)

    open_layer(page, "_conv_stem")
    pick_channel(page, "_conv_stem", 7)
    hover_unit(page, "_conv_stem", 7, 111, 111, [112, 112])
    expect(page.locator("#rf-text")).to_contain_text("outside the image")
    screenshot(page, "unit-arithmetic", page.locator(".panel-pair"))


def test_classifier_softmax_and_pooling_explainers(page: Page, api: httpx.Client) -> None:
    analysis = analyze_chelsea(page)
    page.locator("#predictions .link-button").click()
    wait_for_layer(page, "_fc")
    rows = page.locator(".softmax tbody tr")
    expect(rows).to_have_count(5)
    logits = api.get(f"/api/v1/analyses/{analysis}").json()["logits"]
    best = max(range(len(logits)), key=logits.__getitem__)
    assert float(rows.nth(0).locator("td").nth(1).inner_text()) == pytest.approx(
        logits[best], abs=1e-5
    )
    open_layer(page, "_avg_pooling")
    channel = int(page.locator("#explain-body").get_attribute("data-view").split("|")[1])
    value = api_unit_value(api, analysis, "_avg_pooling", channel, 0, 0)
    mean_text = page.locator("#explain-body .total").inner_text()
    assert float(mean_text.rsplit("=", 1)[1]) == pytest.approx(value, abs=1e-5)


def test_drawing_a_digit_updates_every_layer(page: Page, api: httpx.Client) -> None:
    page.goto("/")
    page.select_option("#model-select", "lenet5-mnist")
    expect(page.locator("#draw-panel")).to_be_visible()
    draw(page, [[(60, 55), (215, 55), (125, 235)]])  # a "7"
    first = wait_for_analysis(page)
    page.wait_for_function(
        "() => document.querySelector('#predictions-list .prediction-label')?.textContent === '7'",
        timeout=30_000,
    )
    open_layer(page, "conv2")
    pick_channel(page, "conv2", 5)
    hover_unit(page, "conv2", 5, 4, 6, [10, 10])
    total = float(page.locator("#conv-total").get_attribute("data-total"))
    analysis = page.locator("#predictions").get_attribute("data-analysis-id")
    assert total == pytest.approx(api_unit_value(api, analysis, "conv2", 5, 4, 6), abs=1e-4)
    screenshot(page, "digit-arithmetic", page.locator(".panel-pair"))
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "digit-seven")

    page.locator("#draw-clear").click()
    draw(page, [[(140, 40), (140, 245)]])  # a "1"
    wait_for_analysis(page, previous=first)
    page.wait_for_function(
        "() => document.querySelector('#predictions-list .prediction-label')?.textContent === '1'",
        timeout=30_000,
    )
    expect(page.locator("#layer-name")).to_have_text("conv2")  # the open layer follows the drawing
    pool = "pool2"
    open_layer(page, pool)
    analysis = page.locator("#predictions").get_attribute("data-analysis-id")
    view = page.locator("#explain-body").get_attribute("data-view").split("|")
    channel, y, x = (int(v) for v in view[1:])
    largest = page.locator("#explain-body .total").inner_text().rsplit("=", 1)[1]
    assert float(largest) == pytest.approx(
        api_unit_value(api, analysis, pool, channel, y, x), abs=1e-5
    )


def test_a_sample_photo_switches_to_its_model(page: Page) -> None:
    page.goto("/?model=lenet5-mnist")
    expect(page.locator("#model-select")).to_have_value("lenet5-mnist")
    page.locator('button.sample[data-url$="/coffee.jpg"]').click()
    wait_for_analysis(page)
    expect(page.locator("#model-select")).to_have_value("efficientnet-lite0")
    expect(page.locator("#draw-panel")).to_be_visible()  # the pad stays: a drawing switches back
    labels = [label for label, _ in shown_predictions(page)]
    assert {"espresso", "cup"} & set(labels), labels


def test_a_lesson_deep_link_opens_the_model_with_its_sample(page: Page) -> None:
    page.goto("/?model=efficientnet-lite0&sample=chelsea")
    wait_for_analysis(page)
    expect(page.locator("#model-select")).to_have_value("efficientnet-lite0")
    labels = [label for label, _ in shown_predictions(page)]
    assert set(CAT_LABELS) & set(labels), labels


@pytest.mark.parametrize(
    ("how", "photo", "expected"),
    [("paste", "coffee.jpg", {"espresso", "cup"}), ("drop", "chelsea.jpg", set(CAT_LABELS))],
)
def test_paste_and_drop_an_image(page: Page, how: str, photo: str, expected: set[str]) -> None:
    page.goto("/")
    page.select_option("#model-select", "efficientnet-lite0")
    send_image(page, how, f"/static/samples/photos/{photo}")
    wait_for_analysis(page)
    labels = {label for label, _ in shown_predictions(page)}
    assert labels & expected, labels


def test_a_permalink_reopens_the_exact_view(page: Page, api: httpx.Client) -> None:
    analysis = api.post(
        "/api/v1/models/efficientnet-lite0/analyze",
        files={"image": ("coffee.png", sample_photo("coffee.png"), "image/png")},
    ).json()["analysis_id"]
    page.goto(f"/a/{analysis}?layer=_blocks.3._bn1&channel=17&y=20&x=9")
    page.wait_for_function(
        "() => document.getElementById('explain-body').dataset.view === '_blocks.3._bn1|17|20|9'",
        timeout=60_000,
    )
    expect(page.locator("#model-select")).to_have_value("efficientnet-lite0")
    expect(page.locator(".layer-block.selected")).to_have_attribute("data-layer", "_blocks.3._bn1")
    value = float(page.locator("#unit-value").get_attribute("data-value"))
    assert value == api_unit_value(api, analysis, "_blocks.3._bn1", 17, 20, 9)


def test_language_switch_persists(page: Page) -> None:
    analyze_chelsea(page)
    missing = page.evaluate("import('/static/js/i18n.js').then((i18n) => i18n.untranslated())")
    assert missing == []
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#input-title")).to_contain_text("选择模型和图片")
    expect(page.locator("#prediction-title")).to_contain_text("网络看到了什么")
    expect(page.locator(".layer-block.selected .layer-kind")).to_have_text("卷积")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "chinese")
    page.reload()
    expect(page.locator("#input-title")).to_contain_text("选择模型和图片")
    page.locator("#lang-toggle").click()
    expect(page.locator("#input-title")).to_contain_text("Pick a model and an image")


def test_keyboard_moves_between_layers_and_units(page: Page) -> None:
    analyze_chelsea(page)
    page.locator(".layer-block.selected").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_for_layer(page, "_bn0")
    page.locator("canvas.channel-grid").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.getElementById('channel-body').dataset.view === '_bn0|1'"
    )
    value = page.locator("#unit-value")
    y, x = int(value.get_attribute("data-y")), int(value.get_attribute("data-x"))
    page.locator("canvas.feature-map").focus()
    page.keyboard.press("ArrowDown" if y < 111 else "ArrowUp")
    page.keyboard.press("ArrowRight" if x < 111 else "ArrowLeft")
    expect(value).to_have_attribute("data-y", str(y + 1 if y < 111 else y - 1))
    expect(value).to_have_attribute("data-x", str(x + 1 if x < 111 else x - 1))


def test_dark_large_text_mode(page: Page) -> None:
    analyze_chelsea(page)
    page.locator("#theme-toggle").click()
    page.locator("#text-size-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("html")).to_have_class("large-text")
    assert page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") > 20
    open_layer(page, "_blocks.5._expand_act")
    page.locator("#layer-panel").scroll_into_view_if_needed()
    screenshot(page, "dark-large")


def test_a_broken_file_gets_a_friendly_message(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    page.set_input_files(
        "#file-input", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"hello"}]
    )
    status = page.locator("#status")
    expect(status).to_have_class("status error")
    expect(status).to_contain_text("not an image the network can read")
    assert len(problems.failed_requests) == 1 and problems.failed_requests[0].startswith("415 ")
    problems.failed_requests.clear()
    problems.console[:] = [m for m in problems.console if "status of 415" not in m]
