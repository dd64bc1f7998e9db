"""Pure ASGI middleware that stamps headers on every response: request ids, security headers,
redirects that never echo the Host header; and the origin checks that refuse other sites' writes."""

import re
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import Headers
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


DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case, without a default port; None when `value` is not an
    http(s) origin (`null`, a path, garbage)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


def own_origin(scope: Scope) -> str | None:
    """The origin a request was addressed to: its scheme and `Host` (else the server's address)."""
    host = Headers(scope=scope).get("host")
    if host is None and scope.get("server"):
        host = "{}:{}".format(*scope["server"])
    return normalized_origin(f"{scope.get('scheme', 'http')}://{host}")


def foreign_origin(scope: Scope, trusted: Iterable[str]) -> str | None:
    """Who sent a request from another site's page, or None for the page itself and plain clients.

    Browsers send `Origin` with every cross-site write, so a write whose `Origin` is neither this
    server (as addressed) nor one of `trusted` came from another page (CSRF). A request without
    `Origin` is refused only when the browser marks it `Sec-Fetch-Site: cross-site`; curl and
    scripts send neither header.
    """
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is None:
        return "another site" if headers.get("sec-fetch-site") == "cross-site" else None
    allowed = {own_origin(scope), *(normalized_origin(item) for item in trusted)} - {None}
    return None if normalized_origin(origin) in allowed else origin


def relative_redirect(location: str, scope: Scope) -> str:
    """`location` as a path when it points back at this server as addressed, else unchanged.

    Starlette builds absolute redirect URLs (trailing-slash redirects) from the `Host` header, so
    a forged Host would come back as a redirect to another site; a path cannot. Leading slashes
    are collapsed so the path never reads as a host (`//evil.example`).
    """
    parts = urlsplit(location)
    points_here = normalized_origin(f"{parts.scheme}://{parts.netloc}") == own_origin(scope)
    if not parts.netloc or not points_here:
        return location
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment))


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
    """Adds the CSP (no inline scripts), nosniff and frame protections to every response, and
    makes redirects back to this server relative (`relative_redirect`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stamped = sending_headers(send, SECURITY_HEADERS, override=False)

        async def send_relative_redirects(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (key, relative_redirect(value.decode("latin-1"), scope).encode("latin-1"))
                    if key.lower() == b"location"
                    else (key, value)
                    for key, value in message.get("headers", [])
                ]
            await stamped(message)

        await self.app(scope, receive, send_relative_redirects)
