"""Redirects never echo the Host header: a forged Host must not turn the server into a redirector
to another site (measured before the fix: `Host: evil.example` got `307` to
`http://evil.example/api/v1/models`)."""

import httpx
import pytest
from fastapi import FastAPI

from app.api.middleware import relative_redirect
from tests.security.rawasgi import call_asgi

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/api/v1/models/", "/api/v1/models"),
        ("/api/v1/models/?lang=zh&x=%2F", "/api/v1/models?lang=zh&x=%2F"),
    ],
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8443", "testserver"])
async def test_a_slash_redirect_is_relative_whatever_the_host(
    client: httpx.AsyncClient, target: str, location: str, host: str
) -> None:
    response = await client.get(target, headers={"Host": host})
    assert response.status_code == 307
    assert response.headers["location"] == location


async def test_without_a_host_header_the_redirect_is_relative_too(running_app: FastAPI) -> None:
    response = await call_asgi(running_app, "GET", "/api/v1/models/")
    assert (response.status_code, response.headers["location"]) == (307, "/api/v1/models")


SCOPE = {"type": "http", "scheme": "http", "headers": [(b"host", b"class.example:8000")]}


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://class.example:8000/api/v1/models?x=1#top", "/api/v1/models?x=1#top"),
        ("HTTP://CLASS.example:8000/a", "/a"),
        # A path that would read as a host once relative is collapsed to one slash.
        ("http://class.example:8000//evil.example/x", "/evil.example/x"),
        ("http://class.example:8000/\\evil.example", "/evil.example"),
        # Redirects elsewhere, and relative ones, are left alone.
        ("https://class.example:8000/a", "https://class.example:8000/a"),
        ("https://docs.example/guide", "https://docs.example/guide"),
        ("/already/relative", "/already/relative"),
    ],
)
def test_only_redirects_back_to_this_server_become_paths(location: str, expected: str) -> None:
    assert relative_redirect(location, SCOPE) == expected
