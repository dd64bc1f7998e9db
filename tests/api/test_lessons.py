"""Lessons API and pages: the seed examples with the numbers the playground gives."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.paths import STATIC_DIR

pytestmark = pytest.mark.anyio


async def test_lessons_in_order_and_one_lesson_in_full(client: httpx.AsyncClient) -> None:
    lessons = (await client.get("/api/v1/lessons")).json()["lessons"]
    assert [lesson["slug"] for lesson in lessons][:2] == ["why-convolution", "convolution"]
    assert lessons[0]["title"]["zh"] == "1 · 为什么要卷积"
    lesson = (await client.get("/api/v1/lessons/why-convolution")).json()
    assert (lesson["previous"], lesson["next"]) == (None, "convolution")
    counts = lesson["steps"][0]["comparisons"][0]["counts"]
    assert [count["weights"] for count in counts] == [10**12, 10**8, 100]
    assert lesson["steps"][0]["live"]["href"] == "/?model=lenet5-mnist&sample=digit-7&layer=conv1"
    missing = await client.get("/api/v1/lessons/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "lesson_not_found"


async def test_preset_detail_has_the_seed_numbers(client: httpx.AsyncClient) -> None:
    curve = (await client.get("/api/v1/lessons/presets/curve-detector-image")).json()
    assert curve["output_shape"] == [1, 26, 26]
    assert [h["value"] for h in curve["highlights"]] == [6600, 0]
    assert curve["equivalent"]["en"].startswith("Equivalent example")
    exact = (await client.get("/api/v1/lessons/presets/curve-detector")).json()
    assert exact["equivalent"] is None and exact["highlights"][0]["value"] == 6600
    refused = (await client.get("/api/v1/lessons/presets/stride-3")).json()
    assert refused["refused"]["code"] == "does_not_fit" and refused["output_shape"] is None
    stack = (await client.get("/api/v1/lessons/presets/multichannel")).json()
    assert stack["output_shape"] == [4, 6, 6]
    run = await client.post("/api/v1/playground/conv", json=stack["request"])
    assert run.json()["output_shape"] == [4, 6, 6]  # the preset's request is the API body


async def test_preset_list_parameter_counts_and_sizes(client: httpx.AsyncClient) -> None:
    presets = (await client.get("/api/v1/lessons/presets")).json()["presets"]
    assert {"curve-detector", "edge-detection", "hengzhe", "im2col"} <= {p["slug"] for p in presets}
    counts = (await client.get("/api/v1/lessons/parameter-counts")).json()["comparisons"]
    by_slug = {c["slug"]: [n["weights"] for n in c["counts"]] for c in counts}
    assert by_slug["megapixel"] == [10**12, 10**8, 100]
    assert by_slug["eight-by-eight"] == [576, 9]
    sizes = (await client.get("/api/v1/lessons/output-sizes")).json()["sizes"]
    assert sizes[0]["fit"]["output"] == 28 and sizes[0]["seed_says"] == {"en": "28", "zh": "28"}
    stride_3 = next(size for size in sizes if size["label"]["en"] == "7×7, 3×3, stride 3")
    assert stride_3["seed_says"] == {"en": "does not fit", "zh": "放不下"}
    assert (await client.get("/api/v1/lessons/presets/nope")).status_code == 404


async def test_lesson_pages_are_bilingual_and_link_the_live_models(
    client: httpx.AsyncClient,
) -> None:
    index = await client.get("/lessons")
    assert index.status_code == 200
    assert 'href="/lessons/why-convolution"' in index.text and "为什么要卷积" in index.text
    page = await client.get("/lessons/convolution")
    assert page.status_code == 200
    assert 'lang="zh"' in page.text and 'lang="en"' in page.text
    assert 'href="/?model=efficientnet-lite0&amp;sample=chelsea&amp;layer=_conv_stem"' in page.text
    assert 'data-preset="curve-detector"' in page.text
    assert '<script type="module" src="/static/js/lessons/lesson-page.js">' in page.text
    assert "<script>" not in page.text
    missing = await client.get("/lessons/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert (
        'data-i18n="missing.lesson.title"' in missing.text and "<code>nope</code>" in missing.text
    )


async def test_every_live_link_opens_a_sample_and_a_layer_of_its_model(
    client: httpx.AsyncClient,
) -> None:
    """The analyze page picks ?model=, analyzes ?sample= (a bundled file for that model) and opens
    ?layer=: each must exist, and the layer is the one the instruction talks about."""
    samples = json.loads((STATIC_DIR / "samples" / "samples.json").read_text())["samples"]
    sample_models = {Path(s["url"]).stem: s["model"] for s in samples}
    slugs = [lesson["slug"] for lesson in (await client.get("/api/v1/lessons")).json()["lessons"]]
    links = []
    for slug in slugs:
        steps = (await client.get(f"/api/v1/lessons/{slug}")).json()["steps"]
        links += [step["live"] for step in steps if step["live"]]
    assert len(links) == 6
    cards = {}
    for link in links:
        query = parse_qs(urlsplit(link["href"]).query)
        assert query == {
            "model": [link["model"]],
            "sample": [link["sample"]],
            "layer": [link["layer"]],
        }
        assert sample_models[link["sample"]] == link["model"]
        if link["model"] not in cards:
            cards[link["model"]] = (await client.get(f"/api/v1/models/{link['model']}")).json()
        assert link["layer"] in {layer["name"] for layer in cards[link["model"]]["layers"]}
        assert (
            link["layer"] in link["instruction"]["en"]
            and link["layer"] in link["instruction"]["zh"]
        )
    lenet = [link for link in links if link["model"] == "lenet5-mnist"]
    assert lenet and all(link["sample"].startswith("digit-") for link in lenet)
