"""Presenter sessions: a teacher's current view, followed live by the class.

A session has an unguessable id (followers need only that) and a presenter token (only its hash is
kept) that is required to change the view. It lives while its presenter sends views or heartbeats
(`idle_seconds`), never longer than `ttl_seconds`. A client address may hold only a few sessions
and a bounded number of follower streams, and one session only its share of the process's
followers, so that one client cannot lock a class out. Each follower gets a one-slot mailbox: only
the newest view matters, so a slow follower never makes memory grow. Without Redis, sessions live
in this process; with Redis, sessions are hashes with a time-to-live, created and refreshed by Lua
scripts (a limit check and its write are one step), and views travel over pub/sub, so a teacher on
one worker reaches students on every worker and host.
"""

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import Settings

logger = logging.getLogger("convlens.sessions")

SESSION_KEY = "convlens:session:{}"
SESSION_INDEX = "convlens:sessions"
CLIENT_SESSIONS = "convlens:sessions-of:{}"
EVENTS_CHANNEL = "convlens:session-events:{}"
ENDED = ""
"""The message that tells followers the presenter ended the session."""

CREATE_SCRIPT = """
-- KEYS: every session, this client's sessions (both by expiry), the new session's hash.
-- ARGV: now, expires at, max sessions, sessions per client, id, token hash, client, ends at,
--       expires in (ms), lifetime (ms).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return {1} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return {2, redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]}
end
redis.call('HSET', KEYS[3], 'token', ARGV[6], 'client', ARGV[7], 'ends', ARGV[8], 'view', '')
redis.call('PEXPIRE', KEYS[3], ARGV[9])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[10])
return {0}
"""

TOUCH_SCRIPT = """
-- KEYS: the session's hash, every session, this client's sessions.
-- ARGV: id, expires at, expires in (ms), lifetime (ms), new view ('' = none), events channel.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'view', ARGV[5])
  redis.call('PUBLISH', ARGV[6], ARGV[5])
end
return 1
"""


class SessionNotFoundError(KeyError):
    """No live session with that id."""


class SessionLimitError(RuntimeError):
    """Too many sessions, or too many followers on this process or of this session."""


class ClientLimitError(SessionLimitError):
    """This client address holds its share of sessions or followers already."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds until a place of this client's frees by itself, when known."""


class PresenterTokenError(PermissionError):
    """The presenter token is missing or wrong."""


@dataclass(frozen=True)
class SessionLimits:
    """Caps and lifetimes. A narrower one left at None is the wider one (no extra limit); a
    session never idles longer than it may live."""

    max_sessions: int
    max_followers: int
    ttl_seconds: int
    idle_seconds: int | None = None
    sessions_per_client: int | None = None
    followers_per_session: int | None = None
    followers_per_client: int | None = None

    def __post_init__(self) -> None:
        for narrower, wider in (
            ("idle_seconds", self.ttl_seconds),
            ("sessions_per_client", self.max_sessions),
            ("followers_per_session", self.max_followers),
            ("followers_per_client", self.max_followers),
        ):
            if getattr(self, narrower) is None:
                object.__setattr__(self, narrower, wider)
        object.__setattr__(self, "idle_seconds", min(self.idle_seconds, self.ttl_seconds))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.max_sessions,
            settings.max_session_followers,
            settings.session_ttl_seconds,
            idle_seconds=settings.session_idle_seconds,
            sessions_per_client=settings.sessions_per_client,
            followers_per_session=settings.followers_per_session,
            followers_per_client=settings.followers_per_client,
        )


@dataclass(frozen=True)
class NewSession:
    session_id: str
    presenter_token: str


@dataclass(eq=False)
class Follower:
    """One follower's mailbox: the newest undelivered message, if any."""

    session_id: str
    client: str
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
class _Session:
    token_sha256: str
    client: str
    view: str | None
    expires_at: float
    """When the session ends unless its presenter sends a view or a heartbeat first."""
    ends_at: float
    """When the session ends whatever its presenter sends."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class SessionHub:
    """Create sessions, publish a presenter's view, fan it out to this process's followers."""

    def __init__(self, limits: SessionLimits, redis: Redis | None = None) -> None:
        self.limits = limits
        self.redis = redis
        self._local: dict[str, _Session] = {}
        self._followers: dict[str, set[Follower]] = {}
        self._followers_of_client: Counter[str] = Counter()
        if redis is not None:
            self._create_script = redis.register_script(CREATE_SCRIPT)
            self._touch_script = redis.register_script(TOUCH_SCRIPT)

    @property
    def follower_count(self) -> int:
        return sum(len(group) for group in self._followers.values())

    def _client_full(self, soonest_expiry: float, now: float) -> ClientLimitError:
        return ClientLimitError(
            f"{self.limits.sessions_per_client} sessions from your address are live already; "
            "end one, or wait until one expires",
            retry_after=math.ceil(soonest_expiry - now),
        )

    async def create(self, client: str = "") -> NewSession:
        """A new session and its presenter token (shown once; only its hash is kept).

        Raises:
            SessionLimitError: `max_sessions` are live already.
            ClientLimitError: `client` holds `sessions_per_client` live sessions already.
        """
        created = NewSession(secrets.token_urlsafe(12), secrets.token_urlsafe(24))
        digest = token_hash(created.presenter_token)
        now = time.time()
        ends_at = now + self.limits.ttl_seconds
        expires_at = now + self.limits.idle_seconds
        full = SessionLimitError(f"{self.limits.max_sessions} sessions are live already")
        if self.redis is None:
            self._local = {k: s for k, s in self._local.items() if s.expires_at > now}
            if len(self._local) >= self.limits.max_sessions:
                raise full
            mine = [s.expires_at for s in self._local.values() if s.client == client]
            if len(mine) >= self.limits.sessions_per_client:
                raise self._client_full(min(mine), now)
            self._local[created.session_id] = _Session(digest, client, None, expires_at, ends_at)
            return created
        keys = [
            SESSION_INDEX,
            CLIENT_SESSIONS.format(client),
            SESSION_KEY.format(created.session_id),
        ]
        caps = [self.limits.max_sessions, self.limits.sessions_per_client]
        new = [created.session_id, digest, client, ends_at]
        lives = [_milliseconds(self.limits.idle_seconds), _milliseconds(self.limits.ttl_seconds)]
        refused = await self._create_script(keys=keys, args=[now, expires_at, *caps, *new, *lives])
        if refused[0] == 1:
            raise full
        if refused[0] == 2:
            raise self._client_full(float(refused[1]), now)
        return created

    async def _stored(self, session_id: str) -> _Session:
        """A live session (from Redis: `expires_at` unknown, 0)."""
        if self.redis is None:
            session = self._local.get(session_id)
            if session is None or session.expires_at <= time.time():
                raise SessionNotFoundError(session_id)
            return session
        fields = await self.redis.hgetall(SESSION_KEY.format(session_id))
        if b"token" not in fields:
            raise SessionNotFoundError(session_id)
        return _Session(
            token_sha256=fields[b"token"].decode(),
            client=fields.get(b"client", b"").decode(),
            view=fields.get(b"view", b"").decode() or None,
            expires_at=0.0,
            ends_at=float(fields.get(b"ends", b"inf")),
        )

    async def current_view(self, session_id: str) -> dict[str, Any] | None:
        """The presenter's latest view (None before the first one).

        Raises:
            SessionNotFoundError: no live session with that id.
        """
        view = (await self._stored(session_id)).view
        return None if view is None else json.loads(view)

    async def _authorized(self, session_id: str, token: str) -> _Session:
        session = await self._stored(session_id)
        if not hmac.compare_digest(session.token_sha256, token_hash(token)):
            raise PresenterTokenError("the presenter token does not match this session")
        return session

    async def _touch(self, session_id: str, session: _Session, message: str | None) -> None:
        """Keep the session alive for another `idle_seconds` (up to its end), with a new view."""
        now = time.time()
        expires_at = min(now + self.limits.idle_seconds, session.ends_at)
        if self.redis is None:
            session.expires_at = expires_at
            if message is not None:
                session.view = message
                self._deliver(session_id, message)
            return
        keys = [
            SESSION_KEY.format(session_id),
            SESSION_INDEX,
            CLIENT_SESSIONS.format(session.client),
        ]
        lives = [_milliseconds(expires_at - now), _milliseconds(self.limits.ttl_seconds)]
        channel = EVENTS_CHANNEL.format(session_id)
        alive = await self._touch_script(
            keys=keys, args=[session_id, expires_at, *lives, message or "", channel]
        )
        if not alive:
            raise SessionNotFoundError(session_id)

    async def heartbeat(self, session_id: str, token: str) -> None:
        """The presenter is still there: the session lives another `idle_seconds`.

        Raises:
            SessionNotFoundError, PresenterTokenError.
        """
        await self._touch(session_id, await self._authorized(session_id, token), None)

    async def publish(self, session_id: str, token: str, view: dict[str, Any]) -> None:
        """Make `view` the session's current view and send it to every follower (a heartbeat too).

        Raises:
            SessionNotFoundError, PresenterTokenError.
        """
        session = await self._authorized(session_id, token)
        await self._touch(session_id, session, json.dumps(view, separators=(",", ":")))

    async def end(self, session_id: str, token: str) -> None:
        """Close the session; followers get an `end` event and their streams finish."""
        session = await self._authorized(session_id, token)
        if self.redis is None:
            del self._local[session_id]
            self._deliver(session_id, ENDED)
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(SESSION_KEY.format(session_id))
            pipe.zrem(SESSION_INDEX, session_id)
            pipe.zrem(CLIENT_SESSIONS.format(session.client), session_id)
            pipe.publish(EVENTS_CHANNEL.format(session_id), ENDED)
            await pipe.execute()

    def admit(self, session_id: str, client: str) -> Follower:
        """A mailbox for one follower of `session_id` from `client`, counted against every cap.

        The caps are checked and the follower counted with no `await` in between, so followers
        arriving at once can never overshoot a cap. Give the place back with `remove_follower`.

        Raises:
            SessionLimitError: this process or this session has its followers already.
            ClientLimitError: `client` holds `followers_per_client` streams already.
        """
        limits = self.limits
        if self.follower_count >= limits.max_followers:
            raise SessionLimitError(f"{limits.max_followers} followers are connected already")
        if len(self._followers.get(session_id, ())) >= limits.followers_per_session:
            raise SessionLimitError(
                f"{limits.followers_per_session} followers of this session are connected already"
            )
        if self._followers_of_client[client] >= limits.followers_per_client:
            raise ClientLimitError(
                f"{limits.followers_per_client} followers from your address are connected already"
            )
        follower = Follower(session_id, client)
        self._followers.setdefault(session_id, set()).add(follower)
        self._followers_of_client[client] += 1
        return follower

    def remove_follower(self, follower: Follower) -> None:
        """Give a follower's place back (again is harmless)."""
        group = self._followers.get(follower.session_id, set())
        if follower not in group:
            return
        group.discard(follower)
        if not group:
            del self._followers[follower.session_id]
        self._followers_of_client[follower.client] -= 1
        if not self._followers_of_client[follower.client]:
            del self._followers_of_client[follower.client]

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
