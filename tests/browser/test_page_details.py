"""The Analyze page's smaller promises, each checked the way a student would meet it.

Colour-bar legends are redrawn in the new theme's text colour; Clear on the drawing pad clears the
prediction; the pad re-analyses during a stroke, not only after it; the Grad-CAM layer list holds
feature-map layers only (by the layer kinds of the model card); the filter atlas works from the
keyboard; axe-core finds no violation after a photo analysis, after a digit analysis and on a
permalink page; and in 中文 no interface string is left in English, with the glossary's terms.
"""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.config import REPO_ROOT
from tests.browser.conftest import axe_violations, screenshot
from tests.browser.pages import open_layer, wait_for_analysis, wait_for_layer
from tests.browser.untranslated import english_words, untranslated
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

PHOTO, DIGIT = "efficientnet-lite0", "lenet5-mnist"
DIGIT_SEVEN = str(REPO_ROOT / "static" / "samples" / "digits" / "digit-7.png")

# The brightest opaque pixel under a legend's colour bar, where its words are drawn.
LEGEND_INK = """(canvas) => {
  const top = Math.ceil(canvas.height * 0.5);
  const data = canvas.getContext("2d").getImageData(0, top, canvas.width, canvas.height - top).data;
  let brightest = 0;
  for (let i = 0; i < data.length; i += 4) {
    const luminance = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    if (data[i + 3] > 200) brightest = Math.max(brightest, luminance);
  }
  return brightest;
}"""


def analyze(page: Page, model: str, path: str) -> str:
    page.select_option("#model-select", model)
    previous = page.locator("#predictions").get_attribute("data-analysis-id")
    page.set_input_files("#file-input", path)
    return wait_for_analysis(page, previous)


def test_legends_follow_a_theme_switch(page: Page) -> None:
    page.emulate_media(color_scheme="light")
    page.goto("/")
    analyze(page, PHOTO, str(SKIMAGE_DATA / "chelsea.png"))
    wait_for_layer(page, "_conv_stem")
    legends = [
        page.locator(".legend-box canvas.legend"),
        page.locator("#channel-body canvas.legend"),
    ]
    for legend in legends:
        assert legend.evaluate(LEGEND_INK) < 100, "dark words on the light theme"
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    for legend in legends:
        assert legend.evaluate(LEGEND_INK) > 180, "light words on the dark theme"


def test_the_drawing_pad_updates_during_the_stroke_and_clear_clears(page: Page) -> None:
    page.goto("/")
    page.select_option("#model-select", DIGIT)
    expect(page.locator("#draw-canvas")).to_be_visible()
    box = page.locator("#draw-canvas").bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    seen = set()
    for step in range(40):  # a slow "1", 2 s long: the pen never pauses
        page.mouse.move(box["x"] + 140, box["y"] + 40 + step * 5, steps=2)
        page.wait_for_timeout(50)
        seen.add(page.locator("#predictions").get_attribute("data-analysis-id"))
    seen.discard(None)
    assert len(seen) >= 2, f"analyses during the stroke: {seen}"
    page.mouse.up()

    page.locator("#draw-clear").click()  # while the last drawing may still be on its way
    expect(page.locator("#prediction-panel")).to_be_hidden()
    expect(page.locator("#status-text")).to_have_text(
        "Pick a sample, drop a photo or draw a digit to start."
    )
    page.wait_for_timeout(1500)  # nothing from before the Clear comes back
    expect(page.locator("#prediction-panel")).to_be_hidden()


def test_grad_cam_offers_feature_map_layers_only(page: Page, api: httpx.Client) -> None:
    page.goto("/")
    analyze(page, PHOTO, str(SKIMAGE_DATA / "coffee.png"))
    card = api.get(f"/api/v1/models/{PHOTO}").json()
    kinds = {layer["name"]: layer["kind"] for layer in card["layers"]}
    gradcam = page.locator("#attribution-panel article.attr-card").first.locator("select").first
    expect(gradcam.locator("option").first).to_be_attached(timeout=30_000)
    offered = gradcam.locator("option").evaluate_all("options => options.map((o) => o.value)")
    offered_kinds = {kinds[name] for name in offered}
    assert "batchnorm" not in offered_kinds
    assert offered_kinds <= {"conv", "depthwise_conv", "activation", "block"}
    feature_maps = [
        layer["name"]
        for layer in card["layers"]
        if layer["kind"] in offered_kinds
        and len(layer["output_shape"]) == 3
        and layer["output_shape"][1] * layer["output_shape"][2] > 1
    ]
    assert offered == feature_maps


def test_no_accessibility_violations_and_a_keyboard_filter_atlas(
    page: Page, api: httpx.Client
) -> None:
    page.goto("/")
    analysis = analyze(page, PHOTO, str(SKIMAGE_DATA / "chelsea.png"))
    page.wait_for_function("() => document.getElementById('attribution-panel').hidden === false")
    assert axe_violations(page) == []

    atlas = page.locator("canvas.filter-atlas")
    expect(atlas).to_have_attribute("tabindex", "0")
    atlas.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.getElementById('channel-body').dataset.view === '_conv_stem|1'"
    )
    expect(page.locator(".filter-numbers h3")).to_contain_text("Filter 1 ")
    page.keyboard.press("ArrowDown")  # one row of tiles further
    cols = api.get(f"/api/v1/models/{PHOTO}/layers/_conv_stem/filters").json()["atlas"]["cols"]
    page.wait_for_function(
        "view => document.getElementById('channel-body').dataset.view === view",
        arg=f"_conv_stem|{1 + cols}",
    )

    analyze(page, DIGIT, DIGIT_SEVEN)
    page.wait_for_function("() => document.getElementById('attribution-panel').hidden === false")
    assert axe_violations(page) == []

    page.goto(f"/a/{analysis}")
    wait_for_layer(page, "_conv_stem")
    page.wait_for_function("() => document.getElementById('attribution-panel').hidden === false")
    assert axe_violations(page) == []


# Latin words a Chinese page writes as they are: method and function names, a key, package hosts
# (and the language switch, which names English in English).
NAMES = {"Grad", "CAM", "SmoothGrad", "Softmax", "logit", "Ctrl", "TensorFlow", "PyPI", "npm"}
GLOSSARY = {"过滤器": "滤波器", "步长": "步幅", "跳层连接": "跳跃连接"}


def leftovers(page: Page, card: dict) -> list[str]:
    """English on the page that is neither the model's own words (labels, its description's
    names) nor a name from NAMES."""
    own = {word for label in card["labels"] for word in english_words(label)}
    own |= set(english_words(card["i18n"]["zh"]["description"]))
    found = []
    for line in untranslated(page):
        if "#lang-toggle" in line:
            continue
        words = set(line.rsplit("(", 1)[1].rstrip(")").split(", "))
        if words - own - NAMES:
            found.append(line)
    return found


def test_chinese_everywhere_on_the_analyze_page(page: Page, api: httpx.Client) -> None:
    page.goto("/")
    status = page.locator("#status-text")
    expect(status).to_have_text("Pick a sample, drop a photo or draw a digit to start.")
    page.locator("#lang-toggle").click()
    expect(status).to_have_text("选一个样例、拖入一张照片或手写一个数字即可开始。")
    cards = {model: api.get(f"/api/v1/models/{model}").json() for model in (PHOTO, DIGIT)}
    assert leftovers(page, cards[PHOTO]) == []

    for model, path, unit_layer in [
        (PHOTO, str(SKIMAGE_DATA / "chelsea.png"), "_blocks.1._project_conv"),
        (DIGIT, DIGIT_SEVEN, "conv2"),
    ]:
        analyze(page, model, path)
        page.wait_for_function(
            "() => document.getElementById('attribution-panel').hidden === false"
        )
        wait_for_layer(page, cards[model]["layers"][0]["name"])
        assert leftovers(page, cards[model]) == [], model
        open_layer(page, unit_layer)
        assert leftovers(page, cards[model]) == [], unit_layer
        page.locator("#predictions .link-button").click()
        wait_for_layer(page, cards[model]["layers"][-1]["name"])
        found = leftovers(page, cards[model])
        print("\n".join(found))
        assert found == [], "classifier"
        main = page.locator("main").evaluate(
            "main => { const copy = main.cloneNode(true);"
            " copy.querySelector('#attribution-panel').remove(); return copy.innerText; }"
        )
        for avoided, term in GLOSSARY.items():
            assert avoided not in main, f"{avoided}: the glossary says {term}"
    open_layer(page, "conv2")
    expect(page.locator("#filters-body")).to_contain_text("步幅")
    expect(page.locator("#filters-title")).to_contain_text("滤波器")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "analyze-chinese")
    assert re.search("[\u4e00-\u9fff]", page.title())
