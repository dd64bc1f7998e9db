"""A full server is waited for, not reported: the page honours Retry-After and tries again itself.

A real server with one inference slot and no waiting room answers 503 + Retry-After to any upload
that arrives while a forward runs. Six Python clients keep it busy with fresh noise images while
the page uploads; the page must say it is waiting ("the class is busy — trying again in N s") and,
once the crowd is gone, end with predictions without anyone pressing again.
"""

import io
import re
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from app.launch import running_server
from tests.browser.conftest import PageProblems, screenshot
from tests.browser.pages import shown_predictions, wait_for_analysis
from tests.conftest import SKIMAGE_DATA

pytestmark = pytest.mark.browser

PHOTOS = [
    "chelsea.png",
    "coffee.png",
    "astronaut.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "motorcycle_right.png",
]
"""Distinct colour photos: one the server has analyzed already would come from its cache."""
CROWD = 6
WAITING = re.compile(r"^The class is busy — trying again in \d+ s \(no need to press again\)\.$")


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "CONVLENS_INFERENCE_CONCURRENCY": "1",
        "CONVLENS_QUEUE_SIZE": "0",
        "CONVLENS_RETRY_AFTER_SECONDS": "1",
    }
    log = tmp_path_factory.mktemp("tiny-server") / "server.log"
    with running_server(env=env, log=log) as url:
        yield url


def noise_png(seed: int) -> bytes:
    """A photo-sized picture never seen before (a repeated one would come from the cache)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def crowd(base_url: str, stop: threading.Event) -> list[threading.Thread]:
    """CROWD students uploading new images back to back until `stop` is set."""

    def student(first_seed: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            seed = first_seed
            while not stop.is_set():
                image = {"image": ("noise.png", noise_png(seed), "image/png")}
                client.post("/api/v1/models/efficientnet-lite0/analyze", files=image)
                seed += CROWD

    threads = [threading.Thread(target=student, args=(i,), daemon=True) for i in range(CROWD)]
    for thread in threads:
        thread.start()
    return threads


def test_the_page_waits_for_a_full_server(
    page: Page, tiny_server: str, problems: PageProblems
) -> None:
    page.goto(f"{tiny_server}/")
    page.select_option("#model-select", "efficientnet-lite0")
    status = page.locator("#status")
    stop = threading.Event()
    threads = crowd(tiny_server, stop)
    try:
        waited, previous = False, None
        # The crowd leaves the slot free now and then: an upload that slips through is fine,
        # the next photo tries again (a new one: the same photo would come from the cache).
        for photo in PHOTOS:
            previous = page.locator("#predictions").get_attribute("data-analysis-id")
            page.set_input_files("#file-input", str(SKIMAGE_DATA / photo))
            try:
                expect(status).to_have_attribute("data-waiting", "", timeout=5_000)
            except AssertionError:
                continue
            waited = True
            break
        assert waited, "the crowd never filled the server"
        expect(page.locator("#status-text")).to_have_text(WAITING)
        expect(status).not_to_have_class(re.compile(r"\berror\b"))
        screenshot(page, "waiting-room", page.locator("#input-panel"))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    wait_for_analysis(page, previous)  # nobody pressed anything
    assert shown_predictions(page)
    expect(page.locator("#status-text")).to_contain_text("Done:")
    # The panels' own requests meet a one-slot server too (and wait): leave, and let the answers
    # already on their way arrive, before counting.
    page.goto("about:blank")
    page.wait_for_timeout(500)
    problems.failed_requests[:] = [r for r in problems.failed_requests if not r.startswith("503 ")]
    problems.console[:] = [m for m in problems.console if "status of 503" not in m]
