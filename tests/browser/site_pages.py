"""The lessons, the playground, the gallery, the API docs and the not-found pages, as functions:
open a page the way a student leaves it (every preset computed, every table drawn)."""

import httpx
from playwright.sync_api import Page

from app.core.lessons.course import LESSONS
from app.core.lessons.gallery import NETWORKS
from tests.browser.conftest import PageProblems

TIMEOUT_MS = 60_000
LESSON_SLUGS = [lesson.slug for lesson in LESSONS]
NETWORK_IDS = [network.id for network in NETWORKS]
# One seed example per playground operation, and one the playground refuses (the seeds' stride 3).
PLAYGROUND_PRESETS = ["curve-detector", "max-pool", "avg-pool", "relu", "im2col", "stride-3"]
# A ragged input: the server refuses it, and the page says why.
RAGGED_INPUT = "1 2 3\n4 5"


def use_chinese(page: Page) -> None:
    """Every page this context opens from now on starts in Chinese, as after a language switch."""
    page.context.add_init_script("localStorage.setItem('convlens.language', 'zh')")


def untranslated_keys(page: Page) -> list[str]:
    """Interface keys registered in English without Chinese (i18n.js keeps the list)."""
    return page.evaluate("import('/static/js/i18n.js').then((i18n) => i18n.untranslated())")


def open_lesson(page: Page, slug: str) -> None:
    """Open a lesson and show every preset's computation (stepper, im2col or refusal)."""
    page.goto(f"/lessons/{slug}")
    for button in page.locator("button.run-preset").all():
        button.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.preset-result')]"
        ".every((result) => result.dataset.state === 'shown')",
        timeout=TIMEOUT_MS,
    )


def open_network(page: Page, network_id: str, every_layer: bool = False) -> None:
    """Open a gallery network with its landmarks, strip and layer table (blocks or every layer)."""
    page.goto(f"/gallery/{network_id}")
    page.locator("#network-table[data-depth='2']").wait_for(timeout=TIMEOUT_MS)
    if every_layer:
        page.locator("button.depth[data-depth='']").click()
        page.locator("#network-table[data-depth='all']").wait_for(timeout=TIMEOUT_MS)


def network_identifiers(api: httpx.Client, network_id: str) -> frozenset[str]:
    """A network's layer names (and their dotted parts) and PyTorch types, as the API lists them."""
    layers = api.get(f"/api/v1/gallery/{network_id}").json()["layers"]
    names = {part for layer in layers for part in layer["name"].split(".")}
    return frozenset(names | {layer["type"] for layer in layers})


def computed_count(page: Page) -> int:
    return int(page.locator("#playground-form").get_attribute("data-computed") or 0)


def wait_for_playground(page: Page, before: int) -> None:
    """Wait until the playground has shown a computation after the `before`-th one."""
    page.wait_for_function(
        "before => Number(document.getElementById('playground-form').dataset.computed || 0)"
        " > before",
        arg=before,
        timeout=TIMEOUT_MS,
    )


def run_playground_preset(page: Page, slug: str) -> None:
    """Pick a seed example in the playground and wait for its computation (or refusal)."""
    before = computed_count(page)
    page.select_option("#preset-select", slug)
    wait_for_playground(page, before)


def open_playground(page: Page) -> None:
    page.goto("/playground")
    wait_for_playground(page, 0)


def submit_playground_input(page: Page, text: str) -> None:
    """Type an input matrix and press Compute."""
    before = computed_count(page)
    page.fill("#input-text", text)
    page.locator("#playground-form button[type='submit']").click()
    wait_for_playground(page, before)


def forgive(problems: PageProblems, status: int, path: str) -> None:
    """Drop the failures a test provoked on purpose (a 404 page, a refused computation), after
    checking that they happened: every failed request must be `status` on a URL with `path`."""
    expected = [entry for entry in problems.failed_requests if entry.startswith(f"{status} ")]
    assert expected and expected == problems.failed_requests, problems.failed_requests
    assert all(path in entry for entry in expected), expected
    problems.failed_requests.clear()
    problems.console[:] = [line for line in problems.console if f"status of {status}" not in line]
