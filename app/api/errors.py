"""One error shape for every failure: {"error": {"code", "message", "request_id"}}."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.core.preprocess import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from app.services.inference import QueueFullError

logger = logging.getLogger("convlens")

IMAGE_ERROR_STATUS: dict[type[ImageError], int] = {
    EmptyImageError: 400,
    UnsupportedImageError: 415,
    ImageTooLargeError: 413,
    CorruptImageError: 422,
}

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    431: "headers_too_large",
    499: "client_closed_request",
    503: "busy",
}


class ApiError(Exception):
    """An expected failure with an HTTP status, a stable code and a message a person understands."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(what: str, name: str) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"no {what.replace('_', ' ')} named {name!r}")


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_body(code: str, message: str, request_id: str) -> dict[str, dict[str, str]]:
    """The one error shape; pure ASGI middleware (no `Request` yet) builds it directly."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error_body(code, message, request_id_of(request))
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(
            f"{location}: {item.get('msg', 'invalid')}" if location else item.get("msg", "invalid")
        )
    return "; ".join(parts) or "invalid request"


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's (several routes may share a
    path, one method each: Starlette's own 405 names only the first), through included routers."""
    methods: set[str] = set()

    def walk(routes: list, path: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                prefix = route.include_context.prefix
                if path.startswith(prefix):
                    walk(included.routes, path[len(prefix) :])
                continue
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(path) and getattr(route, "methods", None):
                methods.update(route.methods)

    walk(request.app.routes, request.url.path)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception type the app can raise onto the one error shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(ImageError)
    async def image_error(request: Request, exc: ImageError) -> JSONResponse:
        return error_response(request, IMAGE_ERROR_STATUS.get(type(exc), 422), exc.code, str(exc))

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)}
        return error_response(request, 503, "busy", str(exc), headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Nobody reads this answer; it exists so the access log says 499 instead of a 500 traceback.
        return error_response(request, 499, "client_closed_request", "the client disconnected")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body is not valid JSON (or not UTF-8)"
            return error_response(request, 422, "invalid_json", message)
        headers = exc.headers
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(request, exc.status_code, code, message, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error (request %s)", request_id_of(request))
        return error_response(request, 500, "internal_error", "an unexpected error occurred")
