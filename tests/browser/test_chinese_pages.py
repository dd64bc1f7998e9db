"""Every page outside the analyze page, walked in Chinese: no English interface string left, and one
word per concept (app/core/glossary.py). The method is tests/browser/untranslated.py: every string a
reader can see or hear, less identifiers, formulas, names, citations and declared-English parts."""

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.core.glossary import avoided_terms
from tests.browser.conftest import PageProblems, screenshot
from tests.browser.site_pages import (
    LESSON_SLUGS,
    NETWORK_IDS,
    PLAYGROUND_PRESETS,
    RAGGED_INPUT,
    forgive,
    network_identifiers,
    open_lesson,
    open_network,
    open_playground,
    run_playground_preset,
    submit_playground_input,
    untranslated_keys,
    use_chinese,
)
from tests.browser.untranslated import english_words, interface_strings, untranslated

pytestmark = pytest.mark.browser


def glossary_slips(page: Page) -> list[str]:
    """Variants the glossary rejects (过滤器 for 滤波器 …) in the interface; citations of the seed
    tutorials keep their own section titles."""
    text = "\n".join(item["text"] for item in interface_strings(page))
    return [
        f"{variant} → {term.zh}" for variant, term in avoided_terms().items() if variant in text
    ]


def check_chinese(page: Page, identifiers: frozenset[str] = frozenset()) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert untranslated(page, identifiers) == []
    assert glossary_slips(page) == []
    assert untranslated_keys(page) == []


def test_the_detector_flags_english_and_spares_names_and_identifiers() -> None:
    assert english_words("Layer table (scrolls)") == ["Layer", "table", "scrolls"]
    assert english_words("7 (jump 2)") == ["jump"]
    assert english_words("_blocks.3._project_conv 的 1×1 卷积，conv1 · 通道 2") == []
    assert english_words("max(0, x) = 3 · PyTorch 算出 3 · 10 MB") == []
    assert english_words("Bottleneck 模块") == ["Bottleneck"]
    assert english_words("Bottleneck 模块", frozenset({"Bottleneck"})) == []


def test_lessons_index_and_every_lesson(page: Page) -> None:
    use_chinese(page)
    page.goto("/lessons")
    check_chinese(page)
    expect(page).to_have_title("课程 · convlens")
    expect(page.locator(".lesson-card").nth(2)).to_contain_text("以及结果不是整数时会发生什么")
    expect(page.locator(".lesson-card").nth(4)).to_contain_text("池化只保留每个块中最强的响应")
    screenshot(page, "lessons-chinese")
    for slug in LESSON_SLUGS:
        open_lesson(page, slug)
        check_chinese(page)
        assert page.title().endswith(" · convlens") and page.title() != "convlens"
    expect(page).to_have_title("7 · 从 LeNet 到 DenseNet · convlens")


def test_a_preset_follows_a_language_switch(page: Page) -> None:
    page.goto("/lessons/convolution")
    page.locator(".preset[data-preset='edge-detection'] button.run-preset").click()
    result = page.locator(".preset[data-preset='edge-detection'] .preset-result")
    expect(result).to_have_attribute("data-state", "shown")
    result.locator("button[title='next step']").click()
    expect(result.locator(".counter")).to_have_text("step 2 of 36")
    page.locator("#lang-toggle").click()
    expect(result.locator(".counter")).to_have_text("第 2 步，共 36 步")
    expect(result.locator("figcaption").first).to_have_text("输入 · 通道 0")
    check_chinese(page)


def test_the_playground_in_every_operation(page: Page, problems: PageProblems) -> None:
    use_chinese(page)
    open_playground(page)
    expect(page).to_have_title("卷积游乐场 · convlens")
    for slug in PLAYGROUND_PRESETS:
        run_playground_preset(page, slug)
        check_chinese(page)
        if slug == "im2col":
            expect(page.locator("#stepper-panel .im2col")).to_be_visible()
        elif slug == "stride-3":
            expect(page.locator("#stepper-panel")).to_contain_text("卷积游乐场拒绝计算")
            expect(page.locator("#size-panel .fit.bad").first).to_contain_text("不是整数")
        else:
            expect(page.locator("#stepper-panel .stepper")).to_be_visible()
    screenshot(page, "playground-refusal-chinese")
    run_playground_preset(page, "relu")
    submit_playground_input(page, RAGGED_INPUT)
    expect(page.locator("#stepper-panel .refusal .error")).to_have_text(
        "输入必须是完整的数字行，同一通道的每一行长度相同。"
    )
    page.fill("#input-text", "1 x")  # the API takes numbers only: the page says so without asking
    page.locator("#playground-form button[type='submit']").click()
    expect(page.locator("#playground-status .refusal .error")).to_have_text(
        "输入必须是完整的数字行，同一通道的每一行长度相同。"
    )
    check_chinese(page)
    forgive(problems, 422, "/api/v1/playground/")


def test_the_gallery_and_every_network(page: Page, api: httpx.Client) -> None:
    use_chinese(page)
    page.goto("/gallery")
    check_chinese(page)
    expect(page).to_have_title("经典结构画廊 · convlens")
    for network_id in NETWORK_IDS:
        identifiers = network_identifiers(api, network_id)
        open_network(page, network_id)
        check_chinese(page, identifiers)
        open_network(page, network_id, every_layer=True)
        check_chinese(page, identifiers)
        if network_id == "resnet50":
            screenshot(page, "network-chinese")


def test_a_network_page_follows_a_language_switch(page: Page, api: httpx.Client) -> None:
    open_network(page, "resnet50")
    first_block = page.locator("#network-strip .layer-block .layer-kind").first
    expect(first_block).to_have_text("convolution")
    page.locator("#lang-toggle").click()
    expect(first_block).to_have_text("卷积")
    expect(page.locator(".diagram svg")).to_have_attribute("aria-label", "残差块")
    check_chinese(page, network_identifiers(api, "resnet50"))


def test_the_api_docs_page(page: Page) -> None:
    use_chinese(page)
    page.goto("/docs")
    page.locator("#swagger-ui .opblock").first.wait_for()
    expect(page).to_have_title("API 文档 · convlens")
    expect(page.locator("#docs-title")).to_have_text("convlens 的 API")
    expect(page.locator("#swagger-ui")).to_have_attribute("lang", "en")
    check_chinese(page)
    screenshot(page, "docs-chinese")
