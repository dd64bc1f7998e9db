"""axe-core (from npm, loaded only in tests) finds nothing on the lessons, the playground, the
gallery, a network, a dead permalink and the API docs, in both languages and both themes."""

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import PageProblems, axe_violations
from tests.browser.site_pages import (
    forgive,
    open_lesson,
    open_network,
    open_playground,
    run_playground_preset,
    use_chinese,
)

pytestmark = pytest.mark.browser


def dark(page: Page) -> None:
    page.context.add_init_script("localStorage.setItem('convlens.theme', 'dark')")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_lessons_and_a_lesson_with_its_computations(page: Page, axe: Path, language: str) -> None:
    if language == "zh":
        use_chinese(page)
    page.goto("/lessons")
    assert axe_violations(page) == []
    open_lesson(page, "stride-and-padding")  # steppers, a refusal and the output-size table
    assert axe_violations(page) == []
    open_lesson(page, "im2col")
    assert axe_violations(page) == []


def test_the_playground_light_and_dark(page: Page, problems: PageProblems, axe: Path) -> None:
    open_playground(page)
    assert axe_violations(page) == []
    run_playground_preset(page, "stride-3")
    assert axe_violations(page) == []
    dark(page)
    open_playground(page)
    assert axe_violations(page) == []
    forgive(problems, 422, "/api/v1/playground/conv")


def test_the_gallery_and_a_network(page: Page, axe: Path) -> None:
    page.goto("/gallery")
    assert axe_violations(page) == []
    open_network(page, "resnet50", every_layer=True)  # the scrolling layer table
    assert axe_violations(page) == []
    dark(page)
    open_network(page, "googlenet")
    assert axe_violations(page) == []


def test_a_dead_permalink(page: Page, problems: PageProblems, axe: Path) -> None:
    page.goto("/a/0123456789abcdef")
    assert axe_violations(page) == []
    forgive(problems, 404, "/a/0123456789abcdef")


def test_the_api_docs_with_an_operation_open(page: Page, axe: Path) -> None:
    page.goto("/docs")
    page.locator("#swagger-ui .opblock").first.wait_for()
    assert axe_violations(page) == []
    page.locator(".opblock-get .opblock-summary-control").nth(1).click()
    page.locator(".try-out__btn").first.click()
    page.locator(".btn.execute").wait_for()
    assert axe_violations(page) == []
