"""A real convlens server and Debian's Chromium driven by Playwright; every page is error-checked.

Each test gets a fresh page whose console errors, uncaught exceptions, failed requests and CSP
violations are collected and asserted empty when the test ends.
"""

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Response, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from app.config import REPO_ROOT
from app.launch import running_server
from tests.zoo.specs import write_spec

SCREENSHOTS = Path(__file__).parent / "screenshots"
# axe-core, the accessibility checker, from the npm registry: tests only, never a CDN or shipped.
AXE_VERSION = "4.14.1"
AXE_PACKAGE = REPO_ROOT / ".cache" / "axe-core" / "package"
AXE_URL = "/__tests__/axe.min.js"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Modules other issues deliver; the page imports them guarded, so a missing one only costs a 404.
OPTIONAL_MODULES = ["/static/js/panels/attribution.js"]

# Records CSP violations from the first script on; Playwright's init scripts are not subject to CSP.
RECORD_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def chromium_path() -> str:
    path = os.environ.get("CONVLENS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is missing: run `bash scripts/install-test-deps.sh` (make test does)")
    return path


@pytest.fixture(scope="package")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the whole browser suite; its log is kept in pytest's temp directory."""
    with running_server(log=tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="package")
def api(base_url: str) -> Iterator[httpx.Client]:
    """Direct API access, to compare what the page shows with what the server says."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Package scope: Playwright's sync API runs an event loop on this thread until it stops, and
    # the async tests that come after the browser package need the thread's loop back.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """Everything that went wrong on a page, as text."""

    console: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


def missing_optional_modules() -> set[str]:
    return {url for url in OPTIONAL_MODULES if not (REPO_ROOT / url.lstrip("/")).exists()}


def record_failure(
    response: Response, base_url: str, tolerated: set[str], problems: PageProblems
) -> None:
    """Note a 4xx/5xx answer with the start of its body (the API's error message)."""
    if response.status < 400 or response.url.removeprefix(base_url) in tolerated:
        return
    try:
        body = response.text()[:200]
    except PlaywrightError:
        body = "(body unavailable)"
    problems.failed_requests.append(f"{response.status} {response.url} {body}")


@pytest.fixture
def problems() -> PageProblems:
    """The current page's problems; a test that provokes an error removes what it expects."""
    return PageProblems()


@pytest.fixture
def page(browser: Browser, base_url: str, problems: PageProblems) -> Iterator[Page]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1440, "height": 1000}, locale="en-US"
    )
    context.add_init_script(RECORD_CSP)
    tab = context.new_page()
    tolerated = missing_optional_modules()
    tab.on(
        "console",
        lambda message: (
            message.type == "error"
            and message.location.get("url", "").removeprefix(base_url) not in tolerated
            and problems.console.append(f"{message.text} ({message.location.get('url')})")
        ),
    )
    tab.on("pageerror", lambda error: problems.console.append(f"uncaught: {error}"))
    tab.on("response", lambda response: record_failure(response, base_url, tolerated, problems))
    yield tab
    violations = tab.evaluate("window.__cspViolations")
    context.close()
    found = {
        "CSP violations": violations,
        "console errors": problems.console,
        "failed requests": problems.failed_requests,
    }
    assert not any(found.values()), "\n".join(f"{k}: {v}" for k, v in found.items() if v)


def screenshot(page: Page, name: str, target: Locator | None = None) -> Path:
    """Save the viewport (or one element) as tests/browser/screenshots/<name>.png (git-ignored).

    `scripts/publish_screenshots.py` copies the ones the README shows to docs/screenshots/.
    """
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if target is None:
        page.screenshot(path=str(path))
    else:
        target.screenshot(path=str(path))
    return path


def axe_script() -> Path:
    """axe.min.js of AXE_VERSION, packed from npm into .cache/axe-core when first needed."""
    manifest = AXE_PACKAGE / "package.json"
    if manifest.exists() and json.loads(manifest.read_text())["version"] == AXE_VERSION:
        return AXE_PACKAGE / "axe.min.js"
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: the accessibility tests fetch axe-core with it")
    folder = AXE_PACKAGE.parent
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--silent"], cwd=folder, check=True)
    with tarfile.open(folder / f"axe-core-{AXE_VERSION}.tgz") as archive:
        archive.extractall(folder, filter="data")
    return AXE_PACKAGE / "axe.min.js"


@pytest.fixture(scope="session")
def axe() -> Path:
    """Fetch axe-core once before the first accessibility test (a missing npm fails early)."""
    return axe_script()


# Every WCAG 2.x A/AA rule and axe's best practices; `experimental` rules stay off.
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}"""


def axe_violations(page: Page) -> list[dict]:
    """axe-core's violations on the page as it is: [{id, impact, help, nodes}], empty when clean.

    The script is served from the page's own origin (a routed URL), so the page's CSP admits it.
    """
    script = axe_script()
    page.route(f"**{AXE_URL}", lambda route: route.fulfill(path=script))
    try:
        page.add_script_tag(url=AXE_URL)
    finally:
        page.unroute(f"**{AXE_URL}")
    return page.evaluate(RUN_AXE)


@contextmanager
def zoo_server(tmp_path_factory: pytest.TempPathFactory, model_ids: Iterable[str]) -> Iterator[str]:
    """A real server with only the named zoo models (tests/zoo) written as specs; yields its URL."""
    folder = tmp_path_factory.mktemp("zoo-specs")
    for model_id in model_ids:
        write_spec(model_id, folder)
    log = tmp_path_factory.mktemp("zoo-server") / "server.log"
    with running_server(env={"CONVLENS_MODELS_DIR": str(folder)}, log=log) as url:
        yield url
