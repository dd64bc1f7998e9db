"""Presenter sessions: the teacher's view, pushed to every follower as server-sent events."""

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import SettingsDep
from app.api.errors import ApiError, not_found
from app.api.schemas import error_responses
from app.api.schemas_sessions import NewSessionOut, PresenterView, SessionOut
from app.services.sessions import (
    ENDED,
    PresenterTokenError,
    SessionHub,
    SessionLimitError,
    SessionNotFoundError,
)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

SSE_RETRY_MS = 3000
"""How long a follower's browser waits before reconnecting a closed stream."""


def get_sessions(request: Request) -> SessionHub:
    return request.app.state.sessions


SessionsDep = Annotated[SessionHub, Depends(get_sessions)]
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16}$")]
Authorization = Annotated[str | None, Header(max_length=256)]


def presenter_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "presenter_token_required", "send Authorization: Bearer <token>")
    return token.strip()


def session_urls(session_id: str) -> dict[str, str]:
    return {
        "events_url": f"/api/v1/sessions/{session_id}/events",
        "follow_url": f"/?follow={session_id}",
    }


def busy(error: SessionLimitError, retry_after: int) -> ApiError:
    return ApiError(503, "busy", str(error), {"Retry-After": str(retry_after)})


@router.post("", status_code=201, response_model=NewSessionOut, responses=error_responses(503))
async def create_session(sessions: SessionsDep, settings: SettingsDep) -> NewSessionOut:
    """Start presenting: the answer holds the presenter token (kept nowhere else)."""
    try:
        created = await sessions.create()
    except SessionLimitError as error:
        raise busy(error, settings.retry_after_seconds) from error
    return NewSessionOut(
        session_id=created.session_id,
        presenter_token=created.presenter_token,
        view=None,
        view_url=f"/api/v1/sessions/{created.session_id}/view",
        **session_urls(created.session_id),
    )


@router.get("/{session_id}", response_model=SessionOut, responses=error_responses(404))
async def session_state(session_id: SessionId, sessions: SessionsDep) -> SessionOut:
    """The session's latest view (what a follower shows first)."""
    try:
        view = await sessions.current_view(session_id)
    except SessionNotFoundError:
        raise not_found("session", session_id) from None
    return SessionOut(session_id=session_id, view=view, **session_urls(session_id))


@router.post("/{session_id}/view", status_code=204, responses=error_responses(401, 403, 404, 422))
async def set_view(
    session_id: SessionId,
    view: PresenterView,
    sessions: SessionsDep,
    authorization: Authorization = None,
) -> Response:
    """The presenter's new view, sent at once to every follower on every worker."""
    try:
        await sessions.publish(
            session_id, presenter_token(authorization), view.model_dump(exclude_none=True)
        )
    except SessionNotFoundError:
        raise not_found("session", session_id) from None
    except PresenterTokenError as error:
        raise ApiError(403, "wrong_presenter_token", str(error)) from error
    return Response(status_code=204)


@router.delete("/{session_id}", status_code=204, responses=error_responses(401, 403, 404))
async def end_session(
    session_id: SessionId, sessions: SessionsDep, authorization: Authorization = None
) -> Response:
    """Stop presenting: followers receive `end` and their streams close."""
    try:
        await sessions.end(session_id, presenter_token(authorization))
    except SessionNotFoundError:
        raise not_found("session", session_id) from None
    except PresenterTokenError as error:
        raise ApiError(403, "wrong_presenter_token", str(error)) from error
    return Response(status_code=204)


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def follow_stream(
    sessions: SessionHub, session_id: str, heartbeat: float, lifetime: float
) -> AsyncIterator[str]:
    """The current view, then each new one; a comment line as heartbeat; closes after `lifetime`.

    The browser's EventSource reconnects by itself after a close, so a bounded stream costs a
    follower nothing and lets a restarted or rebalanced worker pick it up.
    """
    follower = sessions.add_follower(session_id)
    try:
        yield f"retry: {SSE_RETRY_MS}\n\n"
        view = await sessions.current_view(session_id)
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
    finally:
        sessions.remove_follower(follower)


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        **error_responses(404, 503),
    },
)
async def session_events(
    session_id: SessionId, sessions: SessionsDep, settings: SettingsDep
) -> StreamingResponse:
    """Follow the presenter: `view` events (JSON like the page's `convlens:view`), then `end`."""
    try:
        await sessions.current_view(session_id)
        sessions.check_capacity()
    except SessionNotFoundError:
        raise not_found("session", session_id) from None
    except SessionLimitError as error:
        raise busy(error, settings.retry_after_seconds) from error
    stream = follow_stream(
        sessions, session_id, settings.sse_heartbeat_seconds, settings.sse_max_stream_seconds
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
