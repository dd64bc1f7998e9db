"""What a student does on the Analyze page, as functions: upload, open a layer, hover, draw."""

import time

import httpx
from playwright.sync_api import Page

TIMEOUT_MS = 60_000


def wait_for_analysis(page: Page, previous: str | None = None) -> str:
    """Wait until predictions for a new analysis are shown; returns its id."""
    page.wait_for_function(
        "previous => { const id = document.getElementById('predictions').dataset.analysisId;"
        " return id && id !== previous; }",
        arg=previous,
        timeout=TIMEOUT_MS,
    )
    return page.locator("#predictions").get_attribute("data-analysis-id")


def shown_predictions(page: Page) -> list[tuple[str, float]]:
    items = page.locator("#predictions-list li")
    return [
        (
            items.nth(i).locator(".prediction-label").inner_text(),
            float(items.nth(i).get_attribute("data-probability")),
        )
        for i in range(items.count())
    ]


def open_layer(page: Page, layer: str) -> None:
    page.locator(f'.layer-block[data-layer="{layer}"]').click()
    wait_for_layer(page, layer)


def wait_for_layer(page: Page, layer: str) -> None:
    """Wait until the channel view and the explanation both show `layer`."""
    page.wait_for_function(
        "layer => ['channel-body', 'explain-body'].every("
        " id => document.getElementById(id).dataset.view?.startsWith(layer + '|'))",
        arg=layer,
        timeout=TIMEOUT_MS,
    )


def pick_channel(page: Page, layer: str, channel: int) -> None:
    """Click channel `channel` in the layer grid (channel-number order)."""
    grid = page.locator("canvas.channel-grid")
    cell, gap, cols = (int(grid.get_attribute(f"data-{key}")) for key in ("cell", "gap", "cols"))
    row, col = divmod(channel, cols)
    grid.click(position={"x": col * (cell + gap) + cell / 2, "y": row * (cell + gap) + cell / 2})
    page.wait_for_function(
        "view => document.getElementById('channel-body').dataset.view === view",
        arg=f"{layer}|{channel}",
        timeout=TIMEOUT_MS,
    )


def hover_unit(page: Page, layer: str, channel: int, y: int, x: int, shape: list[int]) -> None:
    """Move the mouse over unit (y, x) of the enlarged map; wait for its explanation.

    The panel may swap its canvas while a layer loads, so the box is read again until the
    canvas in the page has one.
    """
    feature_map = page.locator("canvas.feature-map")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    box = None
    while box is None and time.monotonic() < deadline:
        feature_map.wait_for(state="visible", timeout=TIMEOUT_MS)
        box = feature_map.bounding_box()
        if box is None:
            time.sleep(0.05)
    assert box is not None, "the enlarged feature map never got a box"
    height, width = shape
    feature_map.hover(
        position={"x": (x + 0.5) * box["width"] / width, "y": (y + 0.5) * box["height"] / height}
    )
    page.wait_for_function(
        "view => document.getElementById('explain-body').dataset.view === view",
        arg=f"{layer}|{channel}|{y}|{x}",
        timeout=TIMEOUT_MS,
    )


def api_unit_value(
    api: httpx.Client, analysis: str, layer: str, channel: int, y: int, x: int
) -> float:
    response = api.get(f"/api/v1/analyses/{analysis}/layers/{layer}/channels/{channel}")
    response.raise_for_status()
    return response.json()["values"][y][x]


def draw(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw mouse strokes on the digit canvas (coordinates in its 280×280 CSS pixels)."""
    box = page.locator("#draw-canvas").bounding_box()
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()


def highlight_near(page: Page, canvas_selector: str, x: float, y: float) -> bool:
    """Whether a pixel within 2 CSS px of (x, y) on the canvas has the page's highlight colour."""
    return page.evaluate(
        """([selector, x, y]) => {
          const canvas = document.querySelector(selector);
          const ratio = canvas.width / canvas.getBoundingClientRect().width;
          const probe = document.createElement("canvas");
          const root = getComputedStyle(document.documentElement);
          probe.style.color = root.getPropertyValue("--highlight");
          document.body.append(probe);
          const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
          probe.remove();
          const size = Math.round(5 * ratio);
          const data = canvas.getContext("2d").getImageData(
            Math.round((x - 2) * ratio), Math.round((y - 2) * ratio), size, size).data;
          for (let i = 0; i < data.length; i += 4) {
            const distance = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g)
              + Math.abs(data[i + 2] - b);
            if (distance < 40) return true;
          }
          return false;
        }""",
        [canvas_selector, x, y],
    )


def analyze_file(page: Page, model_id: str, path: str, url: str = "/") -> str:
    """Open `url`, pick `model_id`, upload the image at `path`; returns the analysis id."""
    page.goto(url)
    page.select_option("#model-select", model_id)
    page.set_input_files("#file-input", path)
    return wait_for_analysis(page)


def show_unit(page: Page, layer: str, channel: int, y: int, x: int, shape: list[int]) -> None:
    """Open `layer`, pick `channel` and point at unit (y, x) (a vector layer: just the channel)."""
    open_layer(page, layer)
    pick_channel(page, layer, channel)
    if len(shape) == 3:
        hover_unit(page, layer, channel, y, x, shape[1:])
    else:
        page.wait_for_function(
            "view => document.getElementById('explain-body').dataset.view === view",
            arg=f"{layer}|{channel}|0|0",
            timeout=TIMEOUT_MS,
        )


def api_unit_math(
    api: httpx.Client, analysis: str, layer: str, channel: int, y: int = 0, x: int = 0
) -> dict:
    """The server's breakdown of one unit (GET …/unit), the numbers the explain panel shows."""
    response = api.get(
        f"/api/v1/analyses/{analysis}/layers/{layer}/unit",
        params={"channel": channel, "y": y, "x": x},
    )
    response.raise_for_status()
    return response.json()


SEND_AS = """async ([how, url]) => {
  const blob = await (await fetch(url)).blob();
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], "photo.jpg", { type: blob.type }));
  const target = how === "paste" ? document : document.getElementById("drop-zone");
  const event = how === "paste"
    ? new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true })
    : new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
  target.dispatchEvent(event);
}"""


def send_image(page: Page, how: str, url: str) -> None:
    """Paste (`how="paste"`) or drop (`"drop"`) the image at `url` (a page path) as a user would."""
    page.evaluate(SEND_AS, [how, url])
