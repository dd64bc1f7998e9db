"""Presenter sessions: the teacher's view, pushed to every follower as server-sent events.

Writes (create, view, heartbeat, end) are refused from other sites' pages, and need the presenter
key when the server sets one; following needs only the session id.
"""

import hmac
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.api.deps import SettingsDep
from app.api.errors import ApiError, not_found
from app.api.middleware import foreign_origin
from app.api.ratelimit import SAFE_METHODS
from app.api.schemas import error_responses
from app.api.schemas_sessions import NewSessionOut, PresenterView, SessionOut
from app.config import Settings
from app.services.sessions import (
    ENDED,
    ClientLimitError,
    Follower,
    PresenterTokenError,
    SessionHub,
    SessionLimitError,
    SessionNotFoundError,
)


async def refuse_foreign_writes(request: Request, settings: SettingsDep) -> None:
    """403 for a write sent by another site's page (`CONVLENS_CORS_ORIGINS` are trusted)."""
    if request.method in SAFE_METHODS:
        return
    sender = foreign_origin(request.scope, settings.cors_origins)
    if sender is not None:
        raise ApiError(
            403,
            "foreign_origin",
            f"a page from {sender} may not start or drive a presenter session",
        )


router = APIRouter(
    prefix="/api/v1/sessions", tags=["sessions"], dependencies=[Depends(refuse_foreign_writes)]
)

SSE_RETRY_MS = 3000
"""How long a follower's browser waits before reconnecting a closed stream."""


async def get_sessions(request: Request) -> SessionHub:
    return request.app.state.sessions


async def require_presenter_key(
    settings: SettingsDep,
    key: Annotated[str | None, Header(alias="X-Presenter-Key", max_length=256)] = None,
) -> None:
    """With `CONVLENS_PRESENTER_KEY` set, only those who know it create or drive sessions."""
    expected = settings.presenter_key
    if expected is None:
        return
    if not key:
        raise ApiError(
            401, "presenter_key_required", "this server needs X-Presenter-Key to present"
        )
    if not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise ApiError(403, "wrong_presenter_key", "the presenter key is wrong")


SessionsDep = Annotated[SessionHub, Depends(get_sessions)]
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16}$")]
Authorization = Annotated[str | None, Header(max_length=256)]
PresenterKey = Depends(require_presenter_key)


def presenter_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "presenter_token_required", "send Authorization: Bearer <token>")
    return token.strip()


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@contextmanager
def session_errors(session_id: str) -> Iterator[None]:
    """The hub's refusals as API errors: an unknown session is 404, a wrong token 403."""
    try:
        yield
    except SessionNotFoundError:
        raise not_found("session", session_id) from None
    except PresenterTokenError as error:
        raise ApiError(403, "wrong_presenter_token", str(error)) from error


def session_urls(session_id: str) -> dict[str, str]:
    return {
        "events_url": f"/api/v1/sessions/{session_id}/events",
        "follow_url": f"/?follow={session_id}",
    }


def refused(error: SessionLimitError, code: str, retry_after: int) -> ApiError:
    """503 when the server or session is full; 429 when this client holds its share already."""
    if isinstance(error, ClientLimitError):
        wait = error.retry_after or retry_after
        return ApiError(429, code, str(error), {"Retry-After": str(wait)})
    return ApiError(503, "busy", str(error), {"Retry-After": str(retry_after)})


@router.post(
    "",
    status_code=201,
    response_model=NewSessionOut,
    responses=error_responses(401, 403, 429, 503),
    dependencies=[PresenterKey],
)
async def create_session(
    request: Request, sessions: SessionsDep, settings: SettingsDep
) -> NewSessionOut:
    """Start presenting: the answer holds the presenter token (kept nowhere else)."""
    try:
        created = await sessions.create(client_address(request))
    except SessionLimitError as error:
        raise refused(error, "too_many_sessions", settings.retry_after_seconds) from error
    base = f"/api/v1/sessions/{created.session_id}"
    return NewSessionOut(
        session_id=created.session_id,
        presenter_token=created.presenter_token,
        view=None,
        view_url=f"{base}/view",
        heartbeat_url=f"{base}/heartbeat",
        idle_seconds=sessions.limits.idle_seconds,
        **session_urls(created.session_id),
    )


@router.get("/{session_id}", response_model=SessionOut, responses=error_responses(404))
async def session_state(session_id: SessionId, sessions: SessionsDep) -> SessionOut:
    """The session's latest view (what a follower shows first)."""
    with session_errors(session_id):
        view = await sessions.current_view(session_id)
    return SessionOut(session_id=session_id, view=view, **session_urls(session_id))


@router.post(
    "/{session_id}/view",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    dependencies=[PresenterKey],
)
async def set_view(
    session_id: SessionId,
    view: PresenterView,
    sessions: SessionsDep,
    authorization: Authorization = None,
) -> Response:
    """The presenter's new view, sent at once to every follower on every worker."""
    with session_errors(session_id):
        await sessions.publish(
            session_id, presenter_token(authorization), view.model_dump(exclude_none=True)
        )
    return Response(status_code=204)


@router.post(
    "/{session_id}/heartbeat",
    status_code=204,
    responses=error_responses(401, 403, 404),
    dependencies=[PresenterKey],
)
async def presenter_heartbeat(
    session_id: SessionId, sessions: SessionsDep, authorization: Authorization = None
) -> Response:
    """The presenter is still there: without a view or heartbeat the session ends after
    `idle_seconds` (the presenter page beats while it presents)."""
    with session_errors(session_id):
        await sessions.heartbeat(session_id, presenter_token(authorization))
    return Response(status_code=204)


@router.delete(
    "/{session_id}",
    status_code=204,
    responses=error_responses(401, 403, 404),
    dependencies=[PresenterKey],
)
async def end_session(
    session_id: SessionId, sessions: SessionsDep, authorization: Authorization = None
) -> Response:
    """Stop presenting: followers receive `end` and their streams close."""
    with session_errors(session_id):
        await sessions.end(session_id, presenter_token(authorization))
    return Response(status_code=204)


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def follow_stream(
    sessions: SessionHub, follower: Follower, heartbeat: float, lifetime: float
) -> AsyncIterator[str]:
    """The current view, then each new one; a comment line as heartbeat; closes after `lifetime`.

    The browser's EventSource reconnects by itself after a close, so a bounded stream costs a
    follower nothing and lets a restarted or rebalanced worker pick it up.
    """
    try:
        yield f"retry: {SSE_RETRY_MS}\n\n"
        view = await sessions.current_view(follower.session_id)
        if view is not None:
            yield sse("view", PresenterView(**view).model_dump_json(exclude_none=True))
        deadline = anyio.current_time() + lifetime
        while (remaining := deadline - anyio.current_time()) > 0:
            message = await follower.next(min(heartbeat, remaining))
            if message is None:
                yield ": keep-alive\n\n"
            elif message == ENDED:
                yield sse("end", "{}")
                return
            else:
                yield sse("view", message)
    except SessionNotFoundError:
        yield sse("end", "{}")


class FollowerStream(StreamingResponse):
    """An event stream that gives its follower's place back however it ends: finished, client
    gone, or cancelled before its first byte (when the stream's own `finally` would never run)."""

    def __init__(self, sessions: SessionHub, follower: Follower, settings: Settings) -> None:
        stream = follow_stream(
            sessions, follower, settings.sse_heartbeat_seconds, settings.sse_max_stream_seconds
        )
        super().__init__(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.sessions = sessions
        self.follower = follower

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.sessions.remove_follower(self.follower)


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        **error_responses(404, 429, 503),
    },
)
async def session_events(
    request: Request, session_id: SessionId, sessions: SessionsDep, settings: SettingsDep
) -> StreamingResponse:
    """Follow the presenter: `view` events (JSON like the page's `convlens:view`), then `end`.

    Followers are capped per process, per session and per client address (503 or 429).
    """
    with session_errors(session_id):
        await sessions.current_view(session_id)
    try:
        follower = sessions.admit(session_id, client_address(request))
    except SessionLimitError as error:
        raise refused(error, "too_many_followers", settings.retry_after_seconds) from error
    return FollowerStream(sessions, follower, settings)
