"""The self-checks at the end of a lesson: the questions are the API's, a wrong and a right answer
are graded as the API grades them, and the worked solution is shown, in English and in 中文 (no
English left, the glossary's terms, axe-core clean)."""

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import axe_violations, screenshot
from tests.browser.pages import TIMEOUT_MS
from tests.browser.site_pages import untranslated_keys, use_chinese
from tests.browser.test_chinese_pages import glossary_slips
from tests.browser.untranslated import untranslated

pytestmark = pytest.mark.browser


def open_checks(page: Page, api: httpx.Client, slug: str) -> list[dict]:
    """Open the lesson, wait for its self-checks; returns the API's list (in the page's order)."""
    page.goto(f"/lessons/{slug}")
    page.locator("#self-checks[data-state='shown']").wait_for(timeout=TIMEOUT_MS)
    checks = api.get(f"/api/v1/lessons/{slug}/checks").json()["checks"]
    expect(page.locator("#self-checks li.self-check")).to_have_count(len(checks))
    return checks


def answer(page: Page, check_id: str, text: str) -> Locator:
    """Type an answer, press Check, wait for the verdict; returns the check's item."""
    item = page.locator(f"li.self-check[data-check='{check_id}']")
    item.locator("input[name='answer']").fill(text)
    item.locator("button[type='submit']").click()
    item.locator(".verdict").wait_for(timeout=TIMEOUT_MS)
    return item


def graded(api: httpx.Client, slug: str, check_id: str, text: str) -> dict:
    response = api.post(f"/api/v1/lessons/{slug}/checks/{check_id}", json={"answer": text})
    response.raise_for_status()
    return response.json()


def test_a_wrong_and_a_right_answer(page: Page, api: httpx.Client) -> None:
    slug = "stride-and-padding"
    checks = open_checks(page, api, slug)
    items = page.locator("#self-checks li.self-check")
    for index, check in enumerate(checks):
        expect(items.nth(index).locator(".question")).to_have_text(
            check["question"]["en"], use_inner_text=True
        )

    output_size = "output-size:lenet5-mnist:conv2"
    wrong = graded(api, slug, output_size, "16×12×12")
    assert wrong["correct"] is False and wrong["expected"] == [16, 10, 10]
    item = answer(page, output_size, "16×12×12")
    result = item.locator(".check-result")
    expect(result).to_have_attribute("data-correct", "false")
    expect(item.locator(".verdict")).to_have_text(
        "Not quite: the answer is 16×10×10.", use_inner_text=True
    )
    expect(item.locator(".solution")).to_have_text(wrong["solution"]["en"], use_inner_text=True)

    right = graded(api, slug, output_size, "16 x 10 x 10")
    assert right["correct"] is True
    answer(page, output_size, "16 x 10 x 10")
    expect(result).to_have_attribute("data-correct", "true")
    expect(item.locator(".verdict")).to_have_text("Right: 16×10×10.", use_inner_text=True)

    stride = answer(page, "stride-3-on-7x7", "3")
    expect(stride.locator(".check-result")).to_have_attribute("data-correct", "true")
    expect(stride.locator(".solution")).to_contain_text(
        "(7 + 2 − 3) / 3 + 1 = 3", use_inner_text=True
    )
    screenshot(page, "self-checks", page.locator("#self-checks"))
    assert axe_violations(page) == []


def test_in_chinese(page: Page, api: httpx.Client) -> None:
    use_chinese(page)
    slug = "im2col"
    checks = open_checks(page, api, slug)
    parameters = next(c for c in checks if c["id"].startswith("parameters:lenet5-mnist:"))
    expect(page.locator(f"li[data-check='{parameters['id']}'] .question")).to_have_text(
        parameters["question"]["zh"], use_inner_text=True
    )
    expected = graded(api, slug, parameters["id"], "1")
    item = answer(page, parameters["id"], "1")
    expect(item.locator(".verdict")).to_have_text(
        f"不对：答案是 {expected['expected'][0]}。", use_inner_text=True
    )
    expect(item.locator(".solution")).to_have_text(expected["solution"]["zh"], use_inner_text=True)
    item = answer(page, parameters["id"], f"{expected['expected'][0]:,}")  # "2,416" reads as one
    expect(item.locator(".check-result")).to_have_attribute("data-correct", "true")
    expect(item.locator(".verdict")).to_have_text(
        f"正确：{expected['expected'][0]}。", use_inner_text=True
    )
    assert untranslated(page) == []
    assert glossary_slips(page) == []
    assert untranslated_keys(page) == []
    screenshot(page, "self-checks-chinese", page.locator("#self-checks"))
    assert axe_violations(page) == []
