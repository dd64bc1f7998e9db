"""Presenter sessions: a teacher's current view, followed live by the class.

A session has an unguessable id (followers need only that) and a presenter token (only its hash is
kept) that is required to change the view. Each follower gets a one-slot mailbox: only the newest
view matters, so a slow follower never makes memory grow. Without Redis, sessions live in this
process; with Redis, sessions are hashes with a time-to-live and views travel over pub/sub, so a
teacher on one worker reaches students on every worker and host.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import Settings

logger = logging.getLogger("convlens.sessions")

SESSION_KEY = "convlens:session:{}"
SESSION_INDEX = "convlens:sessions"
EVENTS_CHANNEL = "convlens:session-events:{}"
ENDED = ""
"""The message that tells followers the presenter ended the session."""


class SessionNotFoundError(KeyError):
    """No live session with that id."""


class SessionLimitError(RuntimeError):
    """Too many sessions, or too many followers on this process."""


class PresenterTokenError(PermissionError):
    """The presenter token is missing or wrong."""


@dataclass(frozen=True)
class SessionLimits:
    max_sessions: int
    max_followers: int
    ttl_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.max_sessions, settings.max_session_followers, settings.session_ttl_seconds
        )


@dataclass(frozen=True)
class NewSession:
    session_id: str
    presenter_token: str


@dataclass(eq=False)
class Follower:
    """One follower's mailbox: the newest undelivered message, if any."""

    session_id: str
    _message: str | None = None
    _arrived: anyio.Event = field(default_factory=anyio.Event)

    def offer(self, message: str) -> None:
        self._message = message
        self._arrived.set()

    async def next(self, timeout: float) -> str | None:
        """The newest message, or None when `timeout` passes first (time for a heartbeat)."""
        with anyio.move_on_after(timeout):
            await self._arrived.wait()
        message, self._message = self._message, None
        self._arrived = anyio.Event()
        return message


@dataclass
class _LocalSession:
    token_sha256: str
    view: str | None
    expires_at: float


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionHub:
    """Create sessions, publish a presenter's view, fan it out to this process's followers."""

    def __init__(self, limits: SessionLimits, redis: Redis | None = None) -> None:
        self.limits = limits
        self.redis = redis
        self._local: dict[str, _LocalSession] = {}
        self._followers: dict[str, set[Follower]] = {}

    @property
    def follower_count(self) -> int:
        return sum(len(group) for group in self._followers.values())

    async def create(self) -> NewSession:
        """A new session and its presenter token (shown once; only its hash is kept).

        Raises:
            SessionLimitError: `max_sessions` are live already.
        """
        created = NewSession(secrets.token_urlsafe(12), secrets.token_urlsafe(24))
        digest = token_hash(created.presenter_token)
        now = time.time()
        expires_at = now + self.limits.ttl_seconds
        if self.redis is None:
            self._local = {k: s for k, s in self._local.items() if s.expires_at > now}
            if len(self._local) >= self.limits.max_sessions:
                raise SessionLimitError(f"{self.limits.max_sessions} sessions are live already")
            self._local[created.session_id] = _LocalSession(digest, None, expires_at)
            return created
        await self.redis.zremrangebyscore(SESSION_INDEX, "-inf", now)
        if await self.redis.zcard(SESSION_INDEX) >= self.limits.max_sessions:
            raise SessionLimitError(f"{self.limits.max_sessions} sessions are live already")
        key = SESSION_KEY.format(created.session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"token": digest, "view": ""})
            pipe.expire(key, self.limits.ttl_seconds)
            pipe.zadd(SESSION_INDEX, {created.session_id: expires_at})
            await pipe.execute()
        return created

    async def _stored(self, session_id: str) -> tuple[str, str | None]:
        """(token hash, current view JSON or None) of a live session."""
        if self.redis is None:
            session = self._local.get(session_id)
            if session is None or session.expires_at <= time.time():
                raise SessionNotFoundError(session_id)
            return session.token_sha256, session.view
        fields = await self.redis.hgetall(SESSION_KEY.format(session_id))
        if b"token" not in fields:
            raise SessionNotFoundError(session_id)
        return fields[b"token"].decode(), fields.get(b"view", b"").decode() or None

    async def current_view(self, session_id: str) -> dict[str, Any] | None:
        """The presenter's latest view (None before the first one).

        Raises:
            SessionNotFoundError: no live session with that id.
        """
        _, view = await self._stored(session_id)
        return None if view is None else json.loads(view)

    async def _check_token(self, session_id: str, token: str) -> None:
        digest, _ = await self._stored(session_id)
        if not hmac.compare_digest(digest, token_hash(token)):
            raise PresenterTokenError("the presenter token does not match this session")

    async def publish(self, session_id: str, token: str, view: dict[str, Any]) -> None:
        """Make `view` the session's current view and send it to every follower.

        Raises:
            SessionNotFoundError, PresenterTokenError.
        """
        await self._check_token(session_id, token)
        message = json.dumps(view, separators=(",", ":"))
        if self.redis is None:
            session = self._local[session_id]
            session.view = message
            session.expires_at = time.time() + self.limits.ttl_seconds
            self._deliver(session_id, message)
            return
        key = SESSION_KEY.format(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "view", message)
            pipe.expire(key, self.limits.ttl_seconds)
            pipe.zadd(SESSION_INDEX, {session_id: time.time() + self.limits.ttl_seconds})
            pipe.publish(EVENTS_CHANNEL.format(session_id), message)
            await pipe.execute()

    async def end(self, session_id: str, token: str) -> None:
        """Close the session; followers get an `end` event and their streams finish."""
        await self._check_token(session_id, token)
        if self.redis is None:
            del self._local[session_id]
            self._deliver(session_id, ENDED)
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(SESSION_KEY.format(session_id))
            pipe.zrem(SESSION_INDEX, session_id)
            pipe.publish(EVENTS_CHANNEL.format(session_id), ENDED)
            await pipe.execute()

    def check_capacity(self) -> None:
        """Raises SessionLimitError when this process already serves `max_followers` followers."""
        if self.follower_count >= self.limits.max_followers:
            raise SessionLimitError(f"{self.limits.max_followers} followers are connected already")

    def add_follower(self, session_id: str) -> Follower:
        """A mailbox for one follower of `session_id` (call `check_capacity` first)."""
        follower = Follower(session_id)
        self._followers.setdefault(session_id, set()).add(follower)
        return follower

    def remove_follower(self, follower: Follower) -> None:
        group = self._followers.get(follower.session_id, set())
        group.discard(follower)
        if not group:
            self._followers.pop(follower.session_id, None)

    def _deliver(self, session_id: str, message: str) -> None:
        for follower in self._followers.get(session_id, ()):
            follower.offer(message)

    async def relay(self, redis: Redis, *, poll_seconds: float = 1.0) -> None:
        """Forward every session's pub/sub messages to this process's followers (a lifespan task).

        A lost Redis connection is retried after `poll_seconds`; cancellation ends the loop.
        """
        prefix = EVENTS_CHANNEL.format("")
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.psubscribe(EVENTS_CHANNEL.format("*"))
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=poll_seconds
                        )
                        if message is None or message["type"] != "pmessage":
                            continue
                        session_id = message["channel"].decode().removeprefix(prefix)
                        self._deliver(session_id, message["data"].decode())
            except RedisError as error:
                logger.warning("session relay lost Redis (%s); retrying", error)
                await anyio.sleep(poll_seconds)
