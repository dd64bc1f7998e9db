"""The HTTP protocol `convlens serve` runs: uvicorn's own, plus a deadline for request heads.

uvicorn has no timeout for a request head that arrives slowly (its keep-alive timer restarts on
every byte, uvicorn issue #157), so a client dribbling a header byte a second holds a connection,
and a place under `--limit-concurrency`, as long as it likes. ASGI middleware cannot help: the app
is called only once the head is complete. This protocol starts a timer when a connection opens,
and on a kept-alive connection at the first byte of the next request (idle time before it is the
keep-alive timeout's); the timer stops when the head is complete. When it fires, the client gets
a plain `408 Request Timeout` and the connection is closed. Bodies have their own deadline
(`RequestLimitsMiddleware`), and responses, event streams included, are never cut.
"""

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.server import ServerState

from app.config import get_settings

logger = logging.getLogger("convlens.http")


def request_timeout_response(seconds: float) -> bytes:
    body = f"the request head did not arrive within {seconds:g} s\n".encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadDeadlineProtocol(AutoHTTPProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools or h11) with `request_head_timeout_seconds`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_timeout = get_settings().request_head_timeout_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        self._answered: object = None
        """The request cycle answered last; a different `self.cycle` means a new head arrived."""
        self._idle = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._idle:
            self._idle = False
            self._start_head_timer()
        super().data_received(data)
        upgraded = self.transport.get_protocol() is not self
        if self._head_timer is not None and (upgraded or self.cycle is not self._answered):
            self._stop_head_timer()

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()
        if self.cycle is answered:
            self._answered, self._idle = answered, True
        # Otherwise a pipelined request's head was already waiting and has started.

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._answered = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        logger.info("%s: request head not complete after %g s", self.client, self.head_timeout)
        self.transport.write(request_timeout_response(self.head_timeout))
        self.transport.close()
