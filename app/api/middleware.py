"""Pure ASGI middleware that stamps headers on every response: request ids, security headers."""

import re
import uuid
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
]


def sanitize_request_id(raw: str | None) -> str:
    """Keep a client's id only if it is short and plain; otherwise mint one."""
    if raw and _SAFE_ID.fullmatch(raw):
        return raw
    return uuid.uuid4().hex


def sending_headers(send: Send, headers: Sequence[tuple[bytes, bytes]], *, override: bool) -> Send:
    """`send` that adds `headers` to the response start: replacing the app's own when `override`,
    else only those the app did not set."""
    names = {name for name, _ in headers}

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            own = message.get("headers", [])
            present = {key.lower() for key, _ in own}
            if override:
                kept, added = [(k, v) for k, v in own if k.lower() not in names], list(headers)
            else:
                kept, added = list(own), [(k, v) for k, v in headers if k not in present]
            message["headers"] = [*kept, *added]
        await send(message)

    return send_with_headers


class RequestIdMiddleware:
    """Puts `request_id` on `scope["state"]` and `X-Request-ID` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = sanitize_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        scope.setdefault("state", {})["request_id"] = request_id
        stamped = [(b"x-request-id", request_id.encode())]
        await self.app(scope, receive, sending_headers(send, stamped, override=True))


class SecurityHeadersMiddleware:
    """Adds the CSP (no inline scripts), nosniff and frame protections to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, sending_headers(send, SECURITY_HEADERS, override=False))
