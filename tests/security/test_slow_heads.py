"""Slow request heads against a real `convlens serve`: the server itself cuts a head that is still
incomplete at the deadline, while normal requests, slow bodies and long event streams carry on.

Measured before the fix: 100 sockets sending a header byte per second all stayed open for 60 s
(uvicorn has no head timeout; its keep-alive timer restarts on every byte received). The server
here runs with a one-second deadline so the suite stays fast.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from app.launch import ServerProcess, running_server_process

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

DEADLINE = 1.0
SLACK = 0.75
"""How late after the deadline a cut may land: the timer fires on a busy two-core test box."""
DRIBBLE_EVERY = 0.1
HEAD = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"


@pytest.fixture(scope="module")
def server(photo_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "CONVLENS_MODELS_DIR": str(photo_models_dir),
        "CONVLENS_DEVICE": "cpu",
        "CONVLENS_REQUEST_HEAD_TIMEOUT_SECONDS": str(DEADLINE),
        "CONVLENS_SSE_HEARTBEAT_SECONDS": "0.2",
    }
    with running_server_process(env=env) as process:
        yield process


async def connect(server: ServerProcess) -> SocketStream:
    host, port = server.base_url.removeprefix("http://").split(":")
    return await anyio.connect_tcp(host, int(port))


async def read_until_closed(stream: SocketStream) -> bytes:
    received = b""
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
        return received


async def dribble_until_cut(stream: SocketStream, head: bytes) -> tuple[float, bytes]:
    """Send `head`, then one more header byte every DRIBBLE_EVERY s until the server closes;
    (seconds from the first byte to the close, what the server sent)."""

    async def send_slowly() -> None:
        await stream.send(head)
        try:
            while True:
                await anyio.sleep(DRIBBLE_EVERY)
                await stream.send(b"a")
        except (anyio.BrokenResourceError, ConnectionResetError, BrokenPipeError):
            return

    started = time.monotonic()
    with anyio.fail_after(DEADLINE + 10):
        async with anyio.create_task_group() as group:
            group.start_soon(send_slowly)
            received = await read_until_closed(stream)
            group.cancel_scope.cancel()
    return time.monotonic() - started, received


async def test_heads_dribbled_a_byte_at_a_time_are_cut_at_the_deadline(
    server: ServerProcess,
) -> None:
    results: list[tuple[float, bytes]] = []

    async def attacker() -> None:
        async with await connect(server) as stream:
            results.append(await dribble_until_cut(stream, HEAD + b"X-Slow: "))

    healthy: list[float] = []
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
        anyio.create_task_group() as group,
    ):
        for _ in range(12):
            group.start_soon(attacker)
        while len(results) < 12:
            sent = time.monotonic()
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            healthy.append(time.monotonic() - sent)
            await anyio.sleep(0.1)
    assert len(healthy) >= 5 and max(healthy) < 0.5
    for seconds, received in results:
        assert DEADLINE - 0.05 <= seconds <= DEADLINE + SLACK
        assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert received.endswith(b"the request head did not arrive within 1 s\n")


async def test_the_next_head_on_a_kept_alive_connection_has_its_own_deadline(
    server: ServerProcess,
) -> None:
    async with await connect(server) as stream:
        await anyio.sleep(DEADLINE * 0.6)
        await stream.send(HEAD + b"\r\n")
        first = b""
        with anyio.fail_after(10):
            while not first.endswith(b'{"status":"ok"}'):
                first += await stream.receive()
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        await anyio.sleep(DEADLINE * 0.6)
        seconds, received = await dribble_until_cut(stream, HEAD + b"X-Slow: ")
    assert DEADLINE - 0.05 <= seconds <= DEADLINE + SLACK
    assert received.startswith(b"HTTP/1.1 408 ")


async def test_a_quiet_connection_is_cut_at_the_deadline_too(server: ServerProcess) -> None:
    async with await connect(server) as stream:
        started = time.monotonic()
        with anyio.fail_after(DEADLINE + 10):
            received = await read_until_closed(stream)
    assert DEADLINE - 0.05 <= time.monotonic() - started <= DEADLINE + SLACK
    assert received.startswith(b"HTTP/1.1 408 ")


async def test_a_slow_body_and_a_long_stream_outlive_the_head_deadline(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        session = (await http.post("/api/v1/sessions")).json()
        body = b'{"layer": "conv1", "channel": 3}'
        async with await connect(server) as stream:
            head = (
                f"POST {session['view_url']} HTTP/1.1\r\nHost: localhost\r\n"
                f"Authorization: Bearer {session['presenter_token']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            await stream.send(head.encode())
            for start in range(0, len(body), 4):
                await anyio.sleep(2 * DEADLINE / 8)
                await stream.send(body[start : start + 4])
            answer = await read_until_closed(stream)
        assert answer.startswith(b"HTTP/1.1 204 No Content\r\n")

        heartbeats = 0
        with anyio.move_on_after(2.5 * DEADLINE):
            async with http.stream("GET", session["events_url"]) as events:
                assert events.status_code == 200
                async for line in events.aiter_lines():
                    heartbeats += line == ": keep-alive"
        assert heartbeats >= 8
