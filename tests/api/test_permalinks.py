"""Permalink pages and conditional GETs: content-derived ETags, 304 without work, friendly 404s."""

import hashlib
import re

import httpx
import pytest
from fastapi import FastAPI

from app.api.http_cache import CONVLENS_VERSION, etag_matches
from app.config import Settings
from app.core.registry import ModelRegistry
from app.main import create_app
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio


async def analyze_digit(client: httpx.AsyncClient) -> dict:
    response = await client.post(
        "/api/v1/models/lenet5-mnist/analyze",
        files={"image": ("d.png", sample_photo("camera.png"), "image/png")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def expected_etag(model_id: str, weights_sha256: str, path: str, query: str = "") -> str:
    text = "\n".join((CONVLENS_VERSION, model_id, weights_sha256, path, query))
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


async def test_atlas_etag_is_the_content_hash_and_a_match_is_a_bodiless_304(
    client: httpx.AsyncClient, registry: ModelRegistry
) -> None:
    body = await analyze_digit(client)
    url = f"/api/v1/analyses/{body['analysis_id']}/layers/conv1/atlas.png"
    first = await client.get(url)
    weights = registry.get("lenet5-mnist").weights_sha256
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    assert first.headers["etag"] == expected_etag("lenet5-mnist", weights, url)
    assert first.headers["cache-control"] == "public, max-age=86400"
    again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == "public, max-age=86400"
    stale = await client.get(url, headers={"If-None-Match": '"0123"'})
    assert stale.status_code == 200 and stale.content == first.content


async def test_every_analysis_read_has_its_own_validator(client: httpx.AsyncClient) -> None:
    body = await analyze_digit(client)
    base = f"/api/v1/analyses/{body['analysis_id']}"
    urls = [
        base,
        f"{base}/input.png",
        f"{base}/input/channels/0",
        f"{base}/layers/conv1",
        f"{base}/layers/conv1/atlas.png",
        f"{base}/layers/conv1/channels/0",
        f"{base}/layers/conv1/channels/1",
        f"{base}/layers/conv1/patch?top=0&left=0&height=2&width=2",
        f"{base}/layers/conv1/patch?top=1&left=0&height=2&width=2",
        "/api/v1/models/lenet5-mnist/layers/conv1/filters",
        "/api/v1/models/lenet5-mnist/layers/conv1/filters.png",
        "/api/v1/models/lenet5-mnist/layers/conv1/filters/0",
    ]
    etags = []
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, (url, response.text)
        etags.append(response.headers["etag"])
        revalidated = await client.get(url, headers={"If-None-Match": f'W/"x", {etags[-1]}'})
        assert revalidated.status_code == 304, url
    assert len(set(etags)) == len(urls)


async def test_etags_do_not_depend_on_the_process(
    client: httpx.AsyncClient, settings: Settings, registry: ModelRegistry
) -> None:
    body = await analyze_digit(client)
    url = f"/api/v1/analyses/{body['analysis_id']}/layers/relu2/atlas.png"
    here = await client.get(url)
    other_app: FastAPI = create_app(settings, registry=registry)
    async with other_app.router.lifespan_context(other_app):
        transport = httpx.ASGITransport(app=other_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
            await analyze_digit(other)
            there = await other.get(url)
    assert there.headers["etag"] == here.headers["etag"]
    assert there.content == here.content


async def test_errors_carry_no_validators(client: httpx.AsyncClient) -> None:
    body = await analyze_digit(client)
    missing = await client.get(f"/api/v1/analyses/{body['analysis_id']}/layers/conv1/channels/99")
    assert missing.status_code == 404 and "etag" not in missing.headers


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"abcd"', False),
        ("*", True),
    ],
)
def test_if_none_match_parsing(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


async def test_permalink_page_names_the_analysis_for_the_scripts(
    client: httpx.AsyncClient,
) -> None:
    body = await analyze_digit(client)
    page = await client.get(f"/a/{body['analysis_id']}?layer=conv1&channel=2&y=3&x=4")
    assert page.status_code == 200
    tag = re.search(r"<body[^>]*>", page.text).group(0)
    assert f'data-analysis-id="{body["analysis_id"]}"' in tag
    assert 'data-model-id="lenet5-mnist"' in tag
    for script in ("main.js", "permalink.js", "presenter.js"):
        assert f'<script type="module" src="/static/js/{script}"></script>' in page.text
    assert (await client.get("/static/js/permalink.js")).status_code == 200
    index = await client.get("/")
    assert "data-analysis-id" not in re.search(r"<body[^>]*>", index.text).group(0)


@pytest.mark.parametrize("analysis_id", ["0" * 32, "not-an-id", "A" * 32])
async def test_unknown_permalink_is_a_friendly_page_or_json(
    client: httpx.AsyncClient, analysis_id: str
) -> None:
    page = await client.get(f"/a/{analysis_id}", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "This analysis link no longer works" in page.text and "Analyze the picture again" in page.text
    api = await client.get(f"/a/{analysis_id}", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "analysis_not_found"
