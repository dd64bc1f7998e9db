"""Call the app as a server would, byte by byte, and check answers against the one error shape.

httpx normalises paths and always sends whole bodies; these helpers send exactly what a hostile
client would (un-normalised paths, lying headers, slow or endless bodies) and count every read.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

import anyio
from starlette.types import ASGIApp, Message


class ResponseLike(Protocol):
    status_code: int
    text: str

    @property
    def headers(self) -> Any: ...

    def json(self) -> Any: ...


@dataclass
class RawResponse:
    """What the app sent back through ASGI."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedReceive:
    """Hands out `chunks` (after `delay` seconds each), then reports a disconnect once
    `disconnect` is set; `calls` counts every read the app made."""

    chunks: Iterable[bytes] = (b"",)
    delay: float = 0.0
    disconnect: anyio.Event = field(default_factory=anyio.Event)
    calls: int = 0

    def __post_init__(self) -> None:
        self._chunks = iter(self.chunks)
        self._next = next(self._chunks, None)

    async def __call__(self) -> Message:
        self.calls += 1
        if self._next is None:
            await self.disconnect.wait()
            return {"type": "http.disconnect"}
        await anyio.sleep(self.delay)
        chunk, self._next = self._next, next(self._chunks, None)
        return {"type": "http.request", "body": chunk, "more_body": self._next is not None}


async def call_asgi(
    app: ASGIApp,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    receive: ScriptedReceive | None = None,
    client: str = "127.0.0.1",
) -> RawResponse:
    """One request straight into the ASGI app; `path` is the raw target, decoded as uvicorn does."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (client, 50000),
        "server": ("testserver", 80),
    }
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive or ScriptedReceive(), send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_out = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return RawResponse(start["status"], headers_out, body)


def assert_error(response: ResponseLike, status: int, code: str | None = None) -> str:
    """The status, the one error shape, the echoed request id; returns the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    if code is not None:
        assert error["code"] == code, error
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error["message"]


async def assert_healthy(app: ASGIApp) -> None:
    """`/healthz` still answers after whatever the previous request did."""
    response = await call_asgi(app, "GET", "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
