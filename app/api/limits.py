"""Request limits as pure ASGI middleware: they act before any route or form parser sees a byte.

A body announced as too large (Content-Length) is refused without reading it; a chunked body is
counted as it arrives and refused the moment it passes the cap; a client still trickling its body
at the deadline is cut off; too many or too large headers never reach a route. Image uploads
(multipart/form-data, image/*) may be as large as one upload; every other body (JSON) has a cap of
its own, near the largest a route accepts: parsed JSON takes tens of times its size in memory, and
it is parsed on the event loop (a 10 MB body to the playground cost 363 MB). Limits crossed while
a route reads the body are raised as `HTTPException`s, so the app's handlers answer them in the one
error shape; the middleware answers by itself only for requests no route has seen.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Self, TypeVar

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import HTTP_CODES, error_body
from app.config import Settings

T = TypeVar("T")

CLOSE_CONNECTION = {"Connection": "close"}
"""A refused body may still be on its way: closing the connection stops the server reading it."""


class RequestLimitError(HTTPException):
    """A request crossed a limit; the status and message become the JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, detail=message, headers=CLOSE_CONNECTION)


def size_text(size: int) -> str:
    """Bytes in the largest binary unit that fits: "10 MiB", "256 KiB", "1.5 MiB", "900 bytes"."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def upload_too_large_message(max_upload_bytes: int) -> str:
    """The one refusal of an oversized image, whoever sees it first: the middleware or the route."""
    limit = size_text(max_upload_bytes)
    return f"the image is larger than the {limit} upload limit ({max_upload_bytes:,} bytes)"


@dataclass(frozen=True)
class BodyLimit:
    """What a body may weigh: `cap` bytes are read before refusing, `message` is the refusal,
    stated in the limit a person knows (an upload's cap adds its multipart framing, unsaid)."""

    cap: int
    message: str


@dataclass(frozen=True)
class RequestLimits:
    """The numbers the middleware enforces (from `Settings`, see docs/security.md)."""

    max_upload_bytes: int
    max_body_bytes: int
    body_timeout_seconds: float
    max_header_count: int
    max_header_bytes: int
    max_json_body_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_upload_bytes=settings.max_upload_bytes,
            max_body_bytes=settings.max_body_bytes,
            body_timeout_seconds=settings.body_timeout_seconds,
            max_header_count=settings.max_header_count,
            max_header_bytes=settings.max_header_bytes,
            max_json_body_bytes=settings.max_json_body_bytes,
        )

    def body_limit(self, headers: list[tuple[bytes, bytes]]) -> BodyLimit:
        """One upload for images (plus its framing), `max_json_body_bytes` for any other body."""
        content_type = next((value for name, value in headers if name == b"content-type"), b"")
        kind = content_type.split(b";")[0].strip().lower()
        if kind == b"multipart/form-data" or kind.startswith(b"image/"):
            return BodyLimit(self.max_body_bytes, upload_too_large_message(self.max_upload_bytes))
        limit, cap = size_text(self.max_json_body_bytes), self.max_json_body_bytes
        return BodyLimit(
            cap, f"the request body is larger than the {limit} limit for JSON ({cap:,} bytes)"
        )

    def refusal_for_head(self, headers: list[tuple[bytes, bytes]]) -> RequestLimitError | None:
        """Why the request head alone is refused (header count/size, Content-Length), or None."""
        if len(headers) > self.max_header_count:
            return RequestLimitError(
                431, f"the request has {len(headers)} headers; the limit is {self.max_header_count}"
            )
        size = sum(len(name) + len(value) for name, value in headers)
        if size > self.max_header_bytes:
            return RequestLimitError(
                431, f"the headers total {size:,} bytes; the limit is {self.max_header_bytes:,}"
            )
        lengths = {value.strip() for name, value in headers if name.lower() == b"content-length"}
        if not lengths:
            return None
        if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
            return RequestLimitError(400, "the Content-Length header is invalid")
        body = self.body_limit(headers)
        if int(lengths.pop()) > body.cap:
            return RequestLimitError(413, body.message)
        return None


class LimitedReceive:
    """Wraps `receive`: body bytes are counted against the cap and must all arrive by a deadline.

    The deadline runs from the app's first read, so an app that starts reading late (after a
    long computation) is not mistaken for a slow client. Once the body is complete the wrapper
    only passes messages through: later reads wait for `http.disconnect`, which may take as long
    as the response does.
    """

    def __init__(self, receive: Receive, limits: RequestLimits, body: BodyLimit) -> None:
        self._receive = receive
        self._limits = limits
        self._body = body
        self._deadline: float | None = None
        self.body_bytes = 0
        self.complete = False

    async def __call__(self) -> Message:
        if self.complete:
            return await self._receive()
        if self._deadline is None:
            self._deadline = time.monotonic() + self._limits.body_timeout_seconds
        with anyio.move_on_after(self._deadline - time.monotonic()) as waiting:
            message = await self._receive()
        if waiting.cancelled_caught:
            raise RequestLimitError(
                408,
                f"the request body did not arrive within {self._limits.body_timeout_seconds:g} s",
            )
        if message["type"] == "http.request":
            self.body_bytes += len(message.get("body", b""))
            if self.body_bytes > self._body.cap:
                raise RequestLimitError(413, self._body.message)
            self.complete = not message.get("more_body", False)
        return message


async def send_refusal(scope: Scope, receive: Receive, send: Send, error: HTTPException) -> None:
    """Answer `error` in the one error shape, straight from ASGI (no route was involved)."""
    request_id = scope.get("state", {}).get("request_id", "")
    code = HTTP_CODES.get(error.status_code, "http_error")
    response = JSONResponse(
        error_body(code, error.detail, request_id), error.status_code, headers=error.headers
    )
    await response(scope, receive, send)


class RequestLimitsMiddleware:
    """Refuses oversized heads and bodies, and slow bodies, before the app spends work on them."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.limits.refusal_for_head(scope["headers"])
        if refusal is not None:
            await send_refusal(scope, receive, send, refusal)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            limited = LimitedReceive(receive, self.limits, self.limits.body_limit(scope["headers"]))
            await self.app(scope, limited, tracking_send)
        except RequestLimitError as error:
            # Routes' reads are answered by the app's handlers; this catches any other reader.
            if response_started:
                raise
            await send_refusal(scope, receive, send, error)


async def unless_disconnected(request: Request, job: Callable[[], Awaitable[T]]) -> T:
    """Await `job()`, cancelling it if the client disconnects first: a queued job frees its place.

    Call it only once the body has been read; it then listens for `http.disconnect`. A job already
    running in a worker thread finishes (threads cannot be interrupted) but nobody waits for it.

    Raises:
        ClientDisconnect: the client left before the job finished.
    """

    async def cancel_on_disconnect(scope: anyio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            continue
        scope.cancel()

    failure: Exception | None = None
    finished = False
    async with anyio.create_task_group() as group:
        group.start_soon(cancel_on_disconnect, group.cancel_scope)
        try:
            result = await job()
            finished = True
        except Exception as error:  # re-raised below, outside the group, without an ExceptionGroup
            failure = error
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not finished:
        raise ClientDisconnect()
    return result
