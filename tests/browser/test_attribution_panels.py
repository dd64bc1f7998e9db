"""The attribution panel in a real Chromium and a real server: every sentence agrees with the
numbers shown beside it, in English and in Chinese; long work shows the server's progress and
Cancel really stops the server (its CPU time stops growing).

The module runs its own server with an empty feature-visualization cache, so jobs are computed
while the page watches, and so its process can be measured.
"""

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from app.core.attribution.random_filters import smoothness_verdict
from app.launch import ServerProcess, running_server_process
from tests.browser.conftest import screenshot
from tests.browser.pages import open_layer, wait_for_analysis

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
PHOTO = "/?model=efficientnet-lite0&sample=chelsea"
SEVEN = "/?model=lenet5-mnist&sample=digit-7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("attribution-server")
    env = {"CONVLENS_FEATURE_VIS_DIR": str(folder / "feature-vis")}
    with running_server_process(env, log=folder / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def base_url(server: ServerProcess) -> str:
    return server.base_url


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        yield client


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_analysis(page: Page, url: str) -> str:
    page.goto(url)
    analysis = wait_for_analysis(page)
    page.locator("#attribution-panel .attr-card").first.wait_for(timeout=TIMEOUT_MS)
    return analysis


def attr_card(page: Page, title: str) -> Locator:
    """The card whose title starts with `title` ("Occlusion", not "Live occlusion")."""
    return page.locator("#attribution-panel .attr-card").filter(
        has=page.locator("h3", has_text=re.compile(f"^{re.escape(title)}"))
    )


def numbers_in(text: str) -> list[float]:
    return [
        float(n.replace("−", "-")) for n in re.findall(r"[−-]?\d+(?:\.\d+)?(?:e[−-]?\d+)?", text)
    ]


def switch_language(page: Page) -> None:
    page.locator("#lang-toggle").click()
    page.locator("#attribution-panel .attr-card").first.wait_for(timeout=TIMEOUT_MS)


def test_the_intro_counts_the_cards_it_introduces(page: Page) -> None:
    open_analysis(page, PHOTO)
    cards = page.locator("#attribution-panel .attr-card:not([hidden])")
    intro = page.locator("#attribution-panel .attr-intro")
    expect(cards).to_have_count(7)  # no top-9 digit patches for a photo model
    expect(intro).to_contain_text("Here are 7 classic ways")
    assert "Seven" not in intro.inner_text()
    open_analysis(page, SEVEN)
    expect(cards).to_have_count(8, timeout=TIMEOUT_MS)  # LeNet ships its top patches
    expect(intro).to_contain_text("Here are 8 classic ways")
    switch_language(page)
    expect(intro).to_contain_text("这里有 8 种")


def test_feature_visualization_offers_a_responding_channel_and_says_what_happened(
    page: Page, api: httpx.Client
) -> None:
    """Issue 16: channel 0 of _conv_stem went from 9.2e-6 down to −0.098 under "pushes it up"."""
    analysis = open_analysis(page, PHOTO)
    card = attr_card(page, "Feature visualization")
    means = api.get(f"/api/v1/analyses/{analysis}/layers/_conv_stem/channel-means").json()
    strongest = means["strongest"]
    expect(card.locator(".attr-vis-strongest")).to_contain_text(f"Channel {strongest} responds")
    expect(card.locator("input.attr-vis-channel")).to_have_value(str(strongest))
    assert strongest != 0 and means["means"][strongest] == max(means["means"])

    def visualize(channel: int) -> tuple[str, float, float]:
        card.locator("input.attr-vis-channel").fill(str(channel))
        card.locator("button.attr-vis-run").click()
        outcome = card.locator(".attr-vis-outcome")
        expect(outcome).to_be_visible(timeout=TIMEOUT_MS)
        start, final = (float(outcome.get_attribute(f"data-{key}")) for key in ("start", "final"))
        body = api.get(
            f"/api/v1/models/efficientnet-lite0/layers/_conv_stem/channels/{channel}/feature-vis"
        ).json()
        assert (start, final) == (body["start_activation"], body["final_activation"])
        return outcome.inner_text(), start, final

    text, start, final = visualize(strongest)
    assert final > start and "rose from" in text
    text, start, final = visualize(0)
    assert final < start and "fell from" in text and "rose" not in text
    switch_language(page)
    card = attr_card(page, "特征可视化")
    card.locator("input.attr-vis-channel").fill("0")
    card.locator("button.attr-vis-run").click()
    expect(card.locator(".attr-vis-outcome")).to_contain_text("降到", timeout=TIMEOUT_MS)


def test_the_filter_sentence_is_what_the_two_correlations_support(page: Page) -> None:
    for url, expected in ((PHOTO, "only a little smoother"), (SEVEN, "clearly smoother")):
        open_analysis(page, url)
        card = attr_card(page, "First-layer filters")
        verdict = card.locator(".attr-filters-verdict")
        expect(verdict).to_contain_text(expected, timeout=TIMEOUT_MS)
        captions = card.locator("figcaption")
        trained, random = (numbers_in(captions.nth(i).inner_text())[-1] for i in (0, 1))
        assert verdict.get_attribute("data-verdict") == smoothness_verdict(trained, random)
        assert numbers_in(verdict.inner_text()) == [trained, random]
        assert "smooth detectors" not in card.locator(".help").inner_text()
    switch_language(page)
    expect(attr_card(page, "第一层滤波器").locator(".attr-filters-verdict")).to_contain_text(
        "明显比随机的更平滑"
    )


def speckle_numbers(card: Locator) -> tuple[float, float, str]:
    line = card.locator(".attr-speckle:not([data-plain=''])")  # SmoothGrad's, not the plain one
    expect(line).to_be_visible(timeout=TIMEOUT_MS)
    plain, smooth = (
        float(line.get_attribute("data-plain")),
        float(line.get_attribute("data-speckle")),
    )
    shown = numbers_in(line.inner_text())
    assert shown[:2] == [round(plain, 2), round(smooth, 2)]
    return plain, smooth, line.inner_text()


def test_smoothgrad_claims_only_the_smoothing_it_measured(page: Page) -> None:
    """Issue 16: "removes most of the speckle" above a speckled map. Measured: on the cat photo
    SmoothGrad does not lower the speckle; on the digit it removes about a fifth."""
    open_analysis(page, PHOTO)
    card = attr_card(page, "Saliency")
    assert "removes most" not in card.inner_text()
    card.locator("select").select_option("smoothgrad")
    plain, smooth, text = speckle_numbers(card)
    assert abs(smooth / plain - 1) < 0.1 and "did not make the map smoother" in text
    open_analysis(page, SEVEN)
    card = attr_card(page, "Saliency")
    card.locator("select").select_option("smoothgrad")
    plain, smooth, text = speckle_numbers(card)
    assert smooth / plain - 1 <= -0.1
    assert f"removed {round((1 - smooth / plain) * 100)} %" in text
    switch_language(page)
    card = attr_card(page, "显著图")
    card.locator("select").select_option("smoothgrad")
    expect(card.locator(".attr-speckle")).to_contain_text("平均去掉了其中的", timeout=TIMEOUT_MS)


def pixel_of(page: Page, image: Locator, x_share: float) -> list[int]:
    """RGB of a data-URL image at `x_share` of its width, middle row."""
    return page.evaluate(
        """async ([src, share]) => {
          const img = new Image(); img.src = src; await img.decode();
          const canvas = document.createElement("canvas");
          canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
          const context = canvas.getContext("2d"); context.drawImage(img, 0, 0);
          const x = Math.min(img.naturalWidth - 1, Math.floor(share * img.naturalWidth));
          const y = Math.floor(img.naturalHeight / 2);
          return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
        }""",
        [image.get_attribute("src"), x_share],
    )


def test_occlusion_has_a_legend_and_reads_the_right_way_round(page: Page) -> None:
    """Issue 16: red/blue under "yellow = strongest", and "score drop from −0.567 to 0.556"."""
    open_analysis(page, SEVEN)
    card = attr_card(page, "Occlusion")
    assert "Red: covering the region lowered the score" in card.locator(".help").inner_text()
    assert "occlusion has its own blue–white–red scale" in page.locator(".attr-intro").inner_text()
    responses: list[dict] = []
    page.on(
        "response",
        lambda r: (
            r.request.method == "GET"
            and "/attribution-jobs/" in r.url
            and responses.append(r.json())
        ),
    )
    card.get_by_role("button", name="Compute").click()
    legend = card.locator(".attr-legend")
    expect(legend).to_be_visible(timeout=TIMEOUT_MS)
    for _ in range(200):  # the finished poll's response event may come after the redraw
        if any(response.get("result") for response in responses):
            break
        page.wait_for_timeout(50)
    result = next(response["result"] for response in reversed(responses) if response.get("result"))
    low, high = result["min_drop"], result["max_drop"]
    peak = max(abs(low), abs(high))
    bar = legend.locator("img")
    blue, red = pixel_of(page, bar, 0.0), pixel_of(page, bar, 0.999)
    assert blue[2] > blue[0] and red[0] > red[2]
    expect(legend.locator(".attr-legend-low")).to_have_text(f"score rose by {peak:.3f}".rstrip("0"))
    expect(legend.locator(".attr-legend-high")).to_have_text(
        f"score fell by {peak:.3f}".rstrip("0")
    )
    sentence = card.locator(".attr-occlusion-range").inner_text()
    count, fell, rose = numbers_in(sentence)
    assert count == len(result["rows"]) * len(result["cols"])
    assert (fell, rose) == (round(high, 3), round(-low, 3))
    assert "lowered the score by up to" in sentence and "raised it by up to" in sentence
    switch_language(page)
    card = attr_card(page, "遮挡")
    card.get_by_role("button", name="计算").click()
    expect(card.locator(".attr-legend-high")).to_contain_text("分数降低", timeout=TIMEOUT_MS)


def test_occlusion_shows_the_servers_progress_and_cancel_stops_the_server(
    page: Page, api: httpx.Client, server: ServerProcess
) -> None:
    open_analysis(page, PHOTO)
    card = attr_card(page, "Occlusion")
    card.locator("input").nth(1).fill("8")  # window 32: 25 × 25 = 625 positions, about ten seconds
    polls: list[dict] = []
    page.on(
        "response",
        lambda r: (
            r.request.method == "GET" and "/attribution-jobs/" in r.url and polls.append(r.json())
        ),
    )
    card.get_by_role("button", name="Compute").click()
    progress = card.locator(".attr-progress")
    page.wait_for_function(
        "el => Number(el.dataset.done) >= 48", arg=progress.element_handle(), timeout=TIMEOUT_MS
    )
    shown = progress.inner_text()
    done, total = (
        int(progress.get_attribute("data-done")),
        int(progress.get_attribute("data-total")),
    )
    assert total == 625 and 0 < done < total
    assert any((p["done"], p["total"]) == (done, total) for p in polls)  # the server's count
    assert f"{done} of {total} patch positions · {done * 100 // total} %" in shown
    assert float(progress.locator("progress").get_attribute("value") or 0) == pytest.approx(
        done / total, abs=0.01
    )
    job_url = polls[-1]["url"]
    screenshot(page, "attribution-occlusion-progress", card)

    card.get_by_role("button", name="Cancel").click()
    expect(card.locator(".attr-status")).to_have_text("Cancelled: the server stopped computing.")
    expect(progress).to_be_hidden()
    deadline = time.monotonic() + 5
    while (job := api.get(job_url).json())["status"] != "cancelled":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    before = cpu_seconds(server.pid)
    time.sleep(1.5)
    assert cpu_seconds(server.pid) - before < 0.3  # the server is idle again
    assert api.get(job_url).json()["done"] == job["done"] < 625
    card.locator("input").nth(1).fill("32")  # the slot is free: a new job runs at once
    card.get_by_role("button", name="Compute").click()
    expect(card.locator(".attr-legend")).to_be_visible(timeout=TIMEOUT_MS)


def test_grad_cam_explains_heat_on_the_blank_paper(page: Page, api: httpx.Client) -> None:
    """Issue 16: Grad-CAM on a LeNet "7" lights the background without a word on why."""
    analysis = open_analysis(page, SEVEN)
    card = attr_card(page, "Grad-CAM")
    note = card.locator(".attr-gradcam-blank")
    expect(note).to_be_visible(timeout=TIMEOUT_MS)
    body = api.get(f"/api/v1/analyses/{analysis}/grad-cam").json()
    share, blank = round(body["heat_on_blank"] * 100), round(body["blank_fraction"] * 100)
    assert share >= 50
    assert note.inner_text().startswith(
        f"{share} % of the heat lies on blank background ({blank} %"
    )
    expect(card.locator(".attr-gradcam-coarse")).to_contain_text("only 10 × 10 cells")
    expect(card.locator(".attr-gradcam-coarse")).to_contain_text("each cell sees 14 × 14 pixels")
    open_analysis(page, PHOTO)
    expect(attr_card(page, "Grad-CAM").locator(".attr-gradcam-coarse")).to_contain_text(
        "7 × 7 cells", timeout=TIMEOUT_MS
    )
    expect(attr_card(page, "Grad-CAM").locator(".attr-gradcam-blank")).to_have_count(0)
    open_analysis(page, SEVEN)
    switch_language(page)
    expect(attr_card(page, "Grad-CAM").locator(".attr-gradcam-blank")).to_contain_text(
        f"{share} % 的热度落在空白背景上", timeout=TIMEOUT_MS
    )


def test_the_effective_receptive_field_box_is_visible_at_the_stem(
    page: Page, api: httpx.Client
) -> None:
    """Issue 16: the 3 × 3 box of a stem unit on a 224-pixel photo was an invisible dot."""
    analysis = open_analysis(page, PHOTO)
    card = attr_card(page, "Effective receptive field")
    box = card.locator(".attr-box").first
    expect(box).to_be_visible(timeout=TIMEOUT_MS)
    frame = card.locator(".attr-stack").first.bounding_box()
    drawn = box.bounding_box()
    assert drawn["width"] >= 12 and drawn["height"] >= 12
    unit = page.evaluate("() => document.getElementById('explain-body').dataset.view").split("|")
    y, x = int(unit[2]), int(unit[3])
    field = api.get(
        f"/api/v1/analyses/{analysis}/layers/_conv_stem/effective-receptive-field",
        params={"y": y, "x": x},
    ).json()["clipped"]
    scale = frame["width"] / 224
    centre_x = frame["x"] + (field["left"] + field["right"] + 1) / 2 * scale
    centre_y = frame["y"] + (field["top"] + field["bottom"] + 1) / 2 * scale
    inside = (
        frame["x"] <= drawn["x"]
        and drawn["x"] + drawn["width"] <= frame["x"] + frame["width"] + 0.5
    )
    assert inside
    if (
        drawn["x"] > frame["x"] + 0.5
        and drawn["x"] + drawn["width"] < frame["x"] + frame["width"] - 0.5
    ):
        assert drawn["x"] + drawn["width"] / 2 == pytest.approx(centre_x, abs=1.0)
    if (
        drawn["y"] > frame["y"] + 0.5
        and drawn["y"] + drawn["height"] < frame["y"] + frame["height"] - 0.5
    ):
        assert drawn["y"] + drawn["height"] / 2 == pytest.approx(centre_y, abs=1.0)
    expect(card.locator(".attr-erf-enlarged").first).to_be_visible()
    screenshot(page, "attribution-erf-stem", card)


def test_feature_visualization_shows_its_steps_and_cancel_stops_the_worker(
    page: Page, server: ServerProcess
) -> None:
    open_analysis(page, PHOTO)
    open_layer(page, "_blocks.5")
    card = attr_card(page, "Feature visualization")
    expect(card.locator(".attr-vis-strongest")).to_contain_text("responds most", timeout=TIMEOUT_MS)
    polls: list[dict] = []
    page.on(
        "response",
        lambda r: r.request.method == "GET" and "/feature-vis" in r.url and polls.append(r.json()),
    )
    card.locator("button.attr-vis-run").click()
    progress = card.locator(".attr-progress")
    page.wait_for_function(
        "el => Number(el.dataset.done) >= 3", arg=progress.element_handle(), timeout=TIMEOUT_MS
    )
    done = int(progress.get_attribute("data-done"))
    assert progress.get_attribute("data-total") == "128"
    assert any((p["done"], p["steps"]) == (done, 128) for p in polls)
    assert f"{done} of 128 steps" in progress.inner_text()
    card.get_by_role("button", name="Cancel").click()
    expect(card.locator(".attr-status")).to_have_text("Cancelled: the server stopped computing.")
    time.sleep(0.5)  # the step under way ends
    before = cpu_seconds(server.pid)
    time.sleep(1.5)
    assert cpu_seconds(server.pid) - before < 0.3
