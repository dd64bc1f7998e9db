"""A dead link (a permalink the server no longer keeps, a mistyped lesson or network) lands on a
page that says what happened and where to go next, in both languages, never on translation keys."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, screenshot
from tests.browser.site_pages import forgive, untranslated_keys, use_chinese
from tests.browser.untranslated import untranslated

pytestmark = pytest.mark.browser

RAW_KEY = re.compile(r"\bmissing\.[a-z.]+")

# (path, English heading, Chinese heading, a link the page must offer)
DEAD_LINKS = [
    (
        "/a/0123456789abcdef",
        "This analysis link no longer works",
        "这个分析链接已经失效",
        "/",
    ),
    ("/lessons/convolutoin", "There is no such lesson", "没有这节课", "/lessons"),
    (
        "/gallery/lenet6",
        "The gallery has no such network",
        "经典结构画廊里没有这个网络",
        "/gallery",
    ),
]


def visible_text(page: Page) -> str:
    return page.locator("body").inner_text() + "\n" + page.title()


@pytest.mark.parametrize(("path", "english", "chinese", "next_link"), DEAD_LINKS)
def test_a_dead_link_explains_itself_in_both_languages(
    page: Page, problems: PageProblems, path: str, english: str, chinese: str, next_link: str
) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 404
    heading = page.locator("h1")
    expect(heading).to_have_text(english)
    assert not RAW_KEY.search(visible_text(page)), visible_text(page)
    name = path.rsplit("/", 1)[1]
    expect(page.locator("main code")).to_have_text(name)
    expect(page.locator(f'main a[href="{next_link}"]')).to_be_visible()
    expect(page.locator('main a[href="/?model=efficientnet-lite0&sample=chelsea"]')).to_be_visible()
    assert untranslated_keys(page) == []
    if path.startswith("/a/"):
        screenshot(page, "dead-link-english")

    page.locator("#lang-toggle").click()
    expect(heading).to_have_text(chinese)
    expect(page).to_have_title("未找到 · convlens")
    assert not RAW_KEY.search(visible_text(page))
    assert untranslated(page) == []
    if path.startswith("/a/"):
        screenshot(page, "dead-link-chinese")
    forgive(problems, 404, path)


def test_a_dead_permalink_opened_in_chinese(page: Page, problems: PageProblems) -> None:
    use_chinese(page)
    page.goto("/a/feedfacefeedface?layer=_blocks.3&channel=2")
    expect(page.locator("h1")).to_have_text("这个分析链接已经失效")
    expect(page.locator("main")).to_contain_text("重新分析这张图片")
    assert untranslated(page) == []
    forgive(problems, 404, "/a/feedfacefeedface")
