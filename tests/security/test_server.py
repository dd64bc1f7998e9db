"""A real uvicorn server under hostile load: a 200-upload stampede, and raw sockets that lie about
or trickle their bodies. The server runs with a waiting room of 8 so the stampede overflows it."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from app.launch import ServerProcess, running_server_process
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import gradient_image
from tests.security.rawasgi import RawResponse, assert_error

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"
WAITING_ROOM = 8
BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(photo_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "CONVLENS_MODELS_DIR": str(photo_models_dir),
        "CONVLENS_DEVICE": "cpu",
        "CONVLENS_QUEUE_SIZE": str(WAITING_ROOM),
        "CONVLENS_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    with running_server_process(env=env) as process:
        yield process


def assert_healthy(server: ServerProcess) -> None:
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).json() == {"status": "ok"}


async def test_200_simultaneous_uploads_get_only_200_or_503(server: ServerProcess) -> None:
    photos = [encode(gradient_image(64 + index, 48), "PNG") for index in range(201)]
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=120) as http:
        responses: list[httpx.Response] = []

        async def upload(photo: bytes) -> None:
            responses.append(await http.post(ANALYZE, content=photo, headers=PNG_TYPE))

        async with anyio.create_task_group() as group:
            for photo in photos[:200]:
                group.start_soon(upload, photo)
        statuses = [response.status_code for response in responses]
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        busy = [response for response in responses if response.status_code == 503]
        assert busy, "the stampede never filled the waiting room"
        assert statuses.count(200) >= 1 + WAITING_ROOM
        for response in busy:
            assert_error(response, 503, "busy")
            assert response.headers["retry-after"] == "2"
        # Every place is free again: a new upload is served, not refused.
        assert (await http.post(ANALYZE, content=photos[200], headers=PNG_TYPE)).status_code == 200
    assert_healthy(server)


PNG_TYPE = {"content-type": "image/png"}


def raw_exchange(server: ServerProcess, head: str, body: bytes = b"") -> RawResponse:
    """Send exactly `head` and `body` over a socket, then read until the server closes.

    The bytes go out in 16 KiB pieces, as a network delivers them; a server that refuses early
    may close the socket before everything is sent, which is the point.
    """
    host, port = server.base_url.removeprefix("http://").split(":")
    data = head.encode("latin-1") + body
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        try:
            for start in range(0, len(data), 16 * 1024):
                connection.sendall(data[start : start + 16 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head_bytes, _, payload = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return RawResponse(int(status_line.split()[1]), headers, payload)


def request_head(extra: str) -> str:
    return f"POST {ANALYZE} HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n{extra}\r\n"


def test_a_50_mb_content_length_is_refused_with_no_body_sent(server: ServerProcess) -> None:
    response = raw_exchange(server, request_head("Content-Length: 52428800\r\n"))
    message = assert_error(response, 413, "payload_too_large")
    assert message == "the image is larger than the 10 MiB upload limit (10,485,760 bytes)"
    assert response.headers["connection"] == "close"
    assert_healthy(server)


def test_a_body_that_stops_arriving_gets_408(server: ServerProcess) -> None:
    response = raw_exchange(server, request_head("Content-Length: 1000\r\n"), b"\x89PNG\r\n\x1a\n")
    assert f"{BODY_TIMEOUT} s" in assert_error(response, 408, "request_timeout")
    assert_healthy(server)


def test_too_many_headers_get_431(server: ServerProcess) -> None:
    flood = "".join(f"X-Flood-{index}: {index}\r\n" for index in range(120))
    response = raw_exchange(
        server, request_head(flood + "Content-Length: 0\r\nConnection: close\r\n")
    )
    assert "headers" in assert_error(response, 431, "headers_too_large")
    assert_healthy(server)


def test_an_endless_request_head_is_cut_at_16_kib_by_the_http_parser(
    server: ServerProcess,
) -> None:
    # h11 (uvicorn's parser) refuses a head still incomplete after 16 KiB: a plain-text 400 before
    # any app code runs (smaller floods reach the middleware and get the JSON 431 above). The head
    # never ends, and no more is sent than the server reads, so its answer is not lost to a reset.
    endless = request_head("X-Flood: " + "v" * 20_000)
    response = raw_exchange(server, endless[: 20 * 1024])
    assert response.status_code == 400
    assert response.body == b"Invalid HTTP request received."
    assert_healthy(server)


def test_many_analyze_errors_leave_the_server_answering(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for body in [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, b"x" * 5000]:
            response = http.post(ANALYZE, content=body, headers=PNG_TYPE)
            assert response.status_code in (400, 415, 422)
            assert json.loads(response.text)["error"]["request_id"]
    assert_healthy(server)
