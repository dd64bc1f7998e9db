"""Live occlusion on the analyze page: drag (mouse), arrow keys and the size control move the
square, and what the card shows for the square's last position is exactly the API's answer
(GET …/occlusion/live): the top five, their probabilities and the chosen class's score."""

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from app.config import REPO_ROOT
from tests.browser.conftest import screenshot
from tests.browser.pages import TIMEOUT_MS, analyze_file
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

PHOTO, DIGIT = "efficientnet-lite0", "lenet5-mnist"
DIGIT_SEVEN = str(REPO_ROOT / "static" / "samples" / "digits" / "digit-7.png")
LIVE = "#attribution-panel .attr-card:has(.live-stage)"


def live_card(page: Page) -> Locator:
    page.wait_for_function("() => document.getElementById('attribution-panel').hidden === false")
    card = page.locator(LIVE)
    card.scroll_into_view_if_needed()
    return card


def settled(page: Page) -> dict[str, int]:
    """Wait until the card shows the answer for the square where it now is; returns the square."""
    page.wait_for_function(
        """selector => {
          const card = document.querySelector(selector);
          const square = card.querySelector('.live-square').dataset;
          return ['top', 'left', 'size'].every((key) => card.dataset[key] === square[key]);
        }""",
        arg=LIVE,
        timeout=TIMEOUT_MS,
    )
    square = page.locator(f"{LIVE} .live-square")
    return {key: int(square.get_attribute(f"data-{key}")) for key in ("top", "left", "size")}


def check_against_api(page: Page, api: httpx.Client, analysis: str, **params: int) -> dict:
    """The card's top five and score equal the API's for the square at `params`."""
    body = api.get(f"/api/v1/analyses/{analysis}/occlusion/live", params=params).json()
    items = page.locator(f"{LIVE} .live-top5 li")
    shown = items.evaluate_all(
        "items => items.map((i) => [Number(i.dataset.index), Number(i.dataset.probability)])"
    )
    assert shown == [[p["index"], p["probability"]] for p in body["predictions"]]
    expect(items.first).to_contain_text(body["predictions"][0]["label"])
    score = page.locator(f"{LIVE} .live-score")
    assert float(score.get_attribute("data-score")) == body["score"]
    assert int(score.get_attribute("data-class-index")) == body["class_index"]
    return body


def test_dragging_and_the_keyboard_on_the_photo_model(page: Page, api: httpx.Client) -> None:
    analysis = analyze_file(page, PHOTO, str(SKIMAGE_DATA / "chelsea.png"))
    card = live_card(page)
    expect(card.locator(".live-score")).to_have_text("Move the square to start.")
    answers: list[str] = []
    page.on("response", lambda r: "/occlusion/live" in r.url and answers.append(r.url))
    box = card.locator(".live-stage").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    for step in range(20):
        page.mouse.move(box["x"] + 40 + 6 * step, box["y"] + 40 + 5 * step)
        page.wait_for_timeout(40)
    page.mouse.up()
    square = settled(page)
    assert len(answers) >= 3, "the scores update during the drag"
    body = check_against_api(page, api, analysis, **square)
    assert square["size"] == 32 and body["score"] != body["clean_score"]
    assert float(card.locator(".live-rate").get_attribute("data-rate")) > 0

    card.locator(".live-square").press("ArrowRight")
    moved = settled(page)
    assert moved == {**square, "left": square["left"] + 4}
    card.locator(".live-square").press("Shift+ArrowUp")
    moved = settled(page)
    assert moved == {**square, "left": square["left"] + 4, "top": square["top"] - 16}
    check_against_api(page, api, analysis, **moved)

    card.locator(".live-size").fill("64")
    resized = settled(page)
    assert resized["size"] == 64
    page.select_option("#attribution-panel select.attr-class", "281")
    page.wait_for_function(
        "selector => document.querySelector(selector + ' .live-score').dataset.classIndex"
        " === '281'",
        arg=LIVE,
        timeout=TIMEOUT_MS,
    )
    check_against_api(page, api, analysis, **resized, class_index=281)
    screenshot(page, "live-occlusion", card)


def test_the_digit_model_is_covered_in_black(page: Page, api: httpx.Client) -> None:
    analysis = analyze_file(page, DIGIT, DIGIT_SEVEN)
    card = live_card(page)
    square = card.locator(".live-square")
    expect(square).to_have_css("background-color", "rgb(0, 0, 0)")
    box = card.locator(".live-stage").bounding_box()
    card.locator(".live-stage").click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    centre = settled(page)
    assert centre == {"top": 12, "left": 12, "size": 4}
    square.press("ArrowDown")
    check_against_api(page, api, analysis, **settled(page))
