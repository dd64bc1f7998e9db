"""The classroom on the Analyze page: the toolbar, the address bar, presenter and followers.

The toolbar (Copy link, Present) shows once there is an analysis to share and never covers
anything: every visible element's box is checked against the toolbar's at scroll positions down the
whole page, at 1400×900 and on a 390×844 phone (where the results also scroll into view and
nothing overflows sideways). The address bar is always the permalink of the view on screen; a
student following the teacher is scrolled to the unit the teacher points at; stopping presenting
leaves large text as the user had set it.
"""

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import screenshot
from tests.browser.pages import hover_unit, open_layer, pick_channel, wait_for_analysis
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

CHELSEA = str(SKIMAGE_DATA / "chelsea.png")

# Visible elements (leaves, or controls and pictures) outside the toolbar whose box meets the
# toolbar's box, at the current scroll position.
COVERED = """() => {
  const bar = document.querySelector(".classroom-bar");
  const box = bar.getBoundingClientRect();
  const meets = (r) => r.width > 0 && r.height > 0 && r.left < box.right && r.right > box.left
    && r.top < box.bottom && r.bottom > box.top;
  const found = [];
  for (const element of document.querySelectorAll("main *")) {
    if (bar.contains(element) || element.contains(bar)) continue;
    const content = element.children.length === 0
      || ["BUTTON", "SELECT", "CANVAS", "IMG", "INPUT", "LABEL"].includes(element.tagName);
    if (!content || !element.checkVisibility({ visibilityProperty: true })) continue;
    if (meets(element.getBoundingClientRect())) {
      found.push(`${element.tagName.toLowerCase()}#${element.id}.${element.className}`);
    }
  }
  return found;
}"""


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (390, 844)])
def test_the_classroom_bar_never_covers_content(page: Page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto("/")
    expect(page.locator("#status-text")).not_to_be_empty()
    expect(page.locator(".classroom-bar")).to_be_hidden()  # nothing to share yet
    page.set_input_files("#file-input", CHELSEA)
    wait_for_analysis(page)
    expect(page.locator(".classroom-bar")).to_be_visible()
    expect(page.locator("#copy-permalink")).to_be_enabled()
    panel_top = page.evaluate(
        "document.getElementById('prediction-panel').getBoundingClientRect().top"
    )
    assert -1 <= panel_top <= height - 160, "the results' heading is in sight"
    if width < 600:
        assert panel_top < 10, "on a phone the results are scrolled to the top"
    page.wait_for_function("() => document.getElementById('attribution-panel').hidden === false")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of horizontal overflow"
    screenshot(page, f"results-{width}x{height}")
    page_height = page.evaluate("document.documentElement.scrollHeight")
    for top in range(0, page_height, height // 2):
        page.evaluate(f"window.scrollTo(0, {top})")
        assert page.evaluate(COVERED) == [], f"covered at scrollY {top}"


def present_url(page: Page) -> str:
    session = page.evaluate("JSON.parse(sessionStorage.getItem('convlens.presenter'))")
    return f"/?follow={session['id']}"


@pytest.fixture
def follower(browser: Browser, base_url: str) -> Iterator[Page]:
    """A student's page in its own browser context; its console must stay clean too."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


CHANNEL_PANEL_IN_SIGHT = """() => {
  const top = document.getElementById("channel-panel").getBoundingClientRect().top;
  return window.scrollY > 0 && top >= -2 && top < window.innerHeight / 3;
}"""


def test_presenting_follows_and_the_address_is_the_view(
    page: Page, follower: Page, api: httpx.Client
) -> None:
    page.goto("/")
    entries = page.evaluate("history.length")
    page.set_input_files("#file-input", CHELSEA)
    analysis = wait_for_analysis(page)
    card = api.get("/api/v1/models/efficientnet-lite0").json()
    shapes = {layer["name"]: layer["output_shape"] for layer in card["layers"]}

    # The address bar is the permalink of what is on screen (and reopens it).
    open_layer(page, "_blocks.2._expand_conv")
    pick_channel(page, "_blocks.2._expand_conv", 5)
    hover_unit(page, "_blocks.2._expand_conv", 5, 20, 30, shapes["_blocks.2._expand_conv"][1:])
    view = "layer=_blocks.2._expand_conv&channel=5&y=20&x=30"
    expect(page).to_have_url(re.compile(f"/a/{analysis}\\?{re.escape(view)}$"))
    assert page.evaluate("history.length") == entries  # replaced, never pushed

    # Large text the user chose survives presenting.
    page.locator("#text-size-toggle").click()
    expect(page.locator("html")).to_have_class(re.compile("large-text"))
    page.locator("#present-toggle").click()
    expect(page.locator("#present-toggle")).to_have_text("Stop presenting")

    follower.goto(present_url(page))
    follower.wait_for_function(
        "view => document.getElementById('explain-body').dataset.view === view",
        arg="_blocks.2._expand_conv|5|20|30",
        timeout=60_000,
    )
    follower.wait_for_function(CHANNEL_PANEL_IN_SIGHT, timeout=10_000)

    # The teacher moves on; the student, who had scrolled back up, is brought to it.
    follower.evaluate("window.scrollTo(0, 0)")
    page.evaluate("window.scrollTo(0, 0)")
    open_layer(page, "_blocks.4._depthwise_conv")
    pick_channel(page, "_blocks.4._depthwise_conv", 3)
    hover_unit(page, "_blocks.4._depthwise_conv", 3, 7, 9, shapes["_blocks.4._depthwise_conv"][1:])
    follower.wait_for_function(
        "view => document.getElementById('explain-body').dataset.view === view",
        arg="_blocks.4._depthwise_conv|3|7|9",
        timeout=60_000,
    )
    follower.wait_for_function(CHANNEL_PANEL_IN_SIGHT, timeout=10_000)
    expect(follower).to_have_url(re.compile("follow="))
    screenshot(follower, "follower-scrolled")

    page.locator("#present-toggle").click()
    expect(page.locator("#present-toggle")).to_have_text("Present")
    expect(page.locator("html")).to_have_class(re.compile("large-text"))
    expect(page.locator("#text-size-toggle")).to_have_attribute("aria-pressed", "true")

    # Without large text, presenting turns it on for the projector and stopping turns it off.
    page.locator("#text-size-toggle").click()
    page.locator("#present-toggle").click()
    expect(page.locator("html")).to_have_class(re.compile("large-text"))
    page.locator("#present-toggle").click()
    expect(page.locator("html")).not_to_have_class(re.compile("large-text"))
    expect(page.locator("#text-size-toggle")).to_have_attribute("aria-pressed", "false")
