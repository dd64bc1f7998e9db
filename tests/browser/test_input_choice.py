"""Where an image goes, and what a failed one leaves behind, on the Analyze page.

The model's spec says what it reads (`input_kind`), so the expected models come from the API's
model list, never from ids written here: a photo dropped, pasted or picked while a digit model is
selected ends in photo predictions with one line saying why and a one-click way back; a drawing
goes to the digit model. A failed upload removes the previous results and says why in words
(limits in MiB and megapixels); the request id stays in a closed details element.
"""

import io
import re

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, screenshot
from tests.browser.pages import draw, send_image, shown_predictions, wait_for_analysis
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

CAT_LABELS = {"tabby, tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
COFFEE_LABELS = {"espresso", "cup", "coffee mug"}
MIB = 1024 * 1024


def model_of_kind(api: httpx.Client, kind: str) -> dict:
    """The first model whose spec reads `kind` ("photo" or "digit"), as the page picks it."""
    return next(m for m in api.get("/api/v1/models").json()["models"] if m["input_kind"] == kind)


def short_name(model: dict) -> str:
    return model["name"].split(" · ")[0]


def png(width: int, height: int, color: int | tuple[int, int, int] = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB" if isinstance(color, tuple) else "L", (width, height), color).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def upload(page: Page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.set_input_files("#file-input", files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_a_photo_never_goes_to_a_digit_model(page: Page, api: httpx.Client) -> None:
    photo, digit = model_of_kind(api, "photo"), model_of_kind(api, "digit")
    select, note = (
        page.locator("#model-select"),
        page.locator('#input-notes [data-note="switched"]'),
    )

    # A fresh page: the photo ends in photo predictions, and nothing needs explaining.
    page.goto("/")
    send_image(page, "drop", "/static/samples/photos/chelsea.jpg")
    wait_for_analysis(page)
    expect(select).to_have_value(photo["id"])
    assert CAT_LABELS & {label for label, _ in shown_predictions(page)}

    # Opened on the digit network (a lesson's link): dropped, pasted or picked, a photo switches.
    page.goto(f"/?model={digit['id']}")
    expect(select).to_have_value(digit["id"])
    send_image(page, "drop", "/static/samples/photos/chelsea.jpg")
    wait_for_analysis(page)
    expect(select).to_have_value(photo["id"])
    assert CAT_LABELS & {label for label, _ in shown_predictions(page)}
    expect(note).to_have_text(
        f"This looks like a photo, and {short_name(digit)} reads only handwritten digits, so "
        f"{short_name(photo)} is analysing it. Use {short_name(digit)} instead"
    )
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "photo-switched-model")
    for send in ("paste", "pick"):
        previous = page.locator("#predictions").get_attribute("data-analysis-id")
        select.select_option(digit["id"])
        if send == "paste":
            send_image(page, "paste", "/static/samples/photos/coffee.jpg")
        else:
            page.set_input_files("#file-input", str(SKIMAGE_DATA / "coffee.png"))
        wait_for_analysis(page, previous)
        expect(select).to_have_value(photo["id"])
        assert COFFEE_LABELS & {label for label, _ in shown_predictions(page)}, send
        expect(note).to_be_visible()

    # One click back: the same picture, read by the digit network after all.
    previous = page.locator("#predictions").get_attribute("data-analysis-id")
    note.get_by_role("button", name=f"Use {short_name(digit)} instead").click()
    wait_for_analysis(page, previous)
    expect(select).to_have_value(digit["id"])
    digit_labels = api.get(f"/api/v1/models/{digit['id']}").json()["labels"]
    assert {label for label, _ in shown_predictions(page)} <= set(digit_labels)
    expect(note).to_have_count(0)


def test_a_drawing_goes_to_the_digit_model(page: Page, api: httpx.Client) -> None:
    photo, digit = model_of_kind(api, "photo"), model_of_kind(api, "digit")
    page.goto("/")
    page.select_option("#model-select", photo["id"])
    expect(page.locator("#draw-panel")).to_be_visible()
    draw(page, [[(60, 55), (215, 55), (125, 235)]])  # a "7"
    wait_for_analysis(page)
    expect(page.locator("#model-select")).to_have_value(digit["id"])
    digit_labels = api.get(f"/api/v1/models/{digit['id']}").json()["labels"]
    assert {label for label, _ in shown_predictions(page)} <= set(digit_labels)
    expect(page.locator('#input-notes [data-note="switched"]')).to_contain_text(
        f"Drawings go to the digit network, so {short_name(digit)} is analysing yours."
    )


def test_a_failed_upload_clears_the_results_and_says_why(
    page: Page, api: httpx.Client, problems: PageProblems
) -> None:
    photo = model_of_kind(api, "photo")
    page.goto("/")
    page.select_option("#model-select", photo["id"])
    page.set_input_files("#file-input", str(SKIMAGE_DATA / "chelsea.png"))
    analysis = wait_for_analysis(page)
    expect(page).to_have_url(re.compile(f"/a/{analysis}\\?"))
    status, details = page.locator("#status"), page.locator("#status-details")

    with page.expect_response(re.compile("/analyze$")) as answer:
        upload(page, "broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    request_id = answer.value.json()["error"]["request_id"]
    expect(status).to_have_text("This image file seems damaged and cannot be opened.")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    for panel in ("prediction-panel", "architecture-panel", "layer-panel", "channel-panel"):
        expect(page.locator(f"#{panel}")).to_be_hidden()
    expect(page.locator("#classroom-slot")).to_be_hidden()  # nothing to share any more
    expect(page).to_have_url(re.compile(r"/$"))  # the address no longer names the old analysis
    assert not re.search(r"[0-9a-f]{32}", status.inner_text())
    expect(details.locator("code")).not_to_be_visible()
    details.locator("summary").click()
    expect(details.locator("code")).to_contain_text("corrupt_image · HTTP 422 · ")
    expect(details.locator("code")).to_contain_text(f"request {request_id}")
    screenshot(page, "failed-upload", page.locator("#input-panel"))

    upload(page, "huge.png", png(7000, 6000))
    expect(status).to_have_text(
        "This image has too many pixels (7000×6000): the server takes at most 40 megapixels. "
        "Please use a smaller one."
    )
    upload(page, "big.png", b"\x89PNG\r\n\x1a\n" + bytes(11 * MIB))
    expect(status).to_have_text(
        "This file is too large (11 MiB): the server takes files up to 10 MiB. "
        "Please use a smaller image."
    )
    page.locator("#lang-toggle").click()  # the message follows the language
    expect(status).to_have_text(
        "文件太大（11 MiB）：服务器最多接受 10 MiB 的文件。请换一张小一些的图片。"
    )
    expected = {"422": "corrupt_image", "413": "too_large"}
    problems.failed_requests[:] = [
        r for r in problems.failed_requests if expected.get(r[:3], "?") not in r
    ]
    problems.console[:] = [m for m in problems.console if not re.search("status of (413|422)", m)]


def test_a_tiny_image_gets_a_word(page: Page, api: httpx.Client) -> None:
    photo = model_of_kind(api, "photo")
    page.goto("/")
    page.select_option("#model-select", photo["id"])
    upload(page, "dot.png", png(1, 1, (200, 30, 30)))
    wait_for_analysis(page)
    size = f"{photo['input']['width']}×{photo['input']['height']}"
    expect(page.locator('#input-notes [data-note="tiny"]')).to_have_text(
        f"This image is only 1×1 pixels: the network stretches it to {size}, so it sees almost "
        "nothing — expect a guess."
    )
    expect(page.locator('#input-notes [data-note="switched"]')).to_have_count(0)
