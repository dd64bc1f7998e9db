"""The pages around the analyze page belong to one site: the API docs speak both languages and
lead back to the app, every page has a favicon, and every page fits a phone without sideways
scrolling."""

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, screenshot
from tests.browser.site_pages import forgive, open_lesson, open_network, open_playground

pytestmark = pytest.mark.browser

# Every page the site serves, one of each kind.
PAGES = [
    "/",
    "/lessons",
    "/lessons/convolution",
    "/playground",
    "/gallery",
    "/gallery/vgg16",
    "/docs",
    "/a/0123456789abcdef",
]


def test_docs_speak_the_site_language_and_lead_back(page: Page) -> None:
    page.goto("/docs")
    page.locator("#swagger-ui .opblock").first.wait_for()
    viewport = page.locator('meta[name="viewport"]')
    expect(viewport).to_have_attribute("content", "width=device-width, initial-scale=1")
    expect(page).to_have_title("API docs · convlens")
    expect(page.locator("#docs-title")).to_have_text("The convlens API")
    back = page.locator('main a[href="/"], #content a[href="/"]').first
    expect(back).to_have_text("← Back to the app")
    page.locator("#lang-toggle").click()
    expect(page).to_have_title("API 文档 · convlens")
    expect(page.locator("#docs-title")).to_have_text("convlens 的 API")
    expect(back).to_have_text("← 返回应用")
    expect(page.locator(".site-nav a[href='/playground']")).to_have_text("卷积游乐场")
    expect(page.locator(".site-nav a[href='/gallery']")).to_have_text("经典结构画廊")
    back.click()
    page.wait_for_url("**/")
    expect(page.locator("#model-select")).to_be_visible()


def open_docs(page: Page) -> None:
    page.goto("/docs")
    page.locator("#swagger-ui .opblock").first.wait_for()


PHONE = {"width": 390, "height": 844}
PHONE_PAGES = {
    "lessons": lambda page: page.goto("/lessons"),
    "lesson 1 with its tables": lambda page: open_lesson(page, "why-convolution"),
    "lesson 3 with a refusal": lambda page: open_lesson(page, "stride-and-padding"),
    "im2col": lambda page: open_lesson(page, "im2col"),
    "playground": open_playground,
    "gallery": lambda page: page.goto("/gallery"),
    "a network": lambda page: open_network(page, "resnet50", every_layer=True),
    "docs": open_docs,
}


@pytest.mark.parametrize("name", PHONE_PAGES)
def test_every_page_fits_a_phone(page: Page, name: str) -> None:
    page.set_viewport_size(PHONE)
    PHONE_PAGES[name](page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} scrolls sideways: {width} px"
    if name == "lesson 3 with a refusal":
        screenshot(page, "lesson-phone")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_favicon(
    page: Page, api: httpx.Client, problems: PageProblems, path: str
) -> None:
    page.goto(path)
    icon = page.locator('link[rel="icon"]')
    expect(icon).to_have_count(1)
    response = api.get(icon.get_attribute("href"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/")
    if path.startswith("/a/"):
        forgive(problems, 404, path)


def test_the_conventional_favicon_path_answers(api: httpx.Client) -> None:
    response = api.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
