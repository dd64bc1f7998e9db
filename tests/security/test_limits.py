"""Request limits: body cap (announced and streamed), body deadline, header limits, and the queue
place a disconnected client gives back. Reads are counted to prove what was never read."""

import itertools
import threading
from collections.abc import Callable, Iterator

import anyio
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.api.limits import (
    BodyLimit,
    LimitedReceive,
    RequestLimits,
    RequestLimitsMiddleware,
    size_text,
)
from app.config import Settings
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import gradient_image
from tests.security.rawasgi import ScriptedReceive, assert_error, assert_healthy, call_asgi

pytestmark = pytest.mark.anyio

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"
MIB = 1024 * 1024
CAP = Settings().max_body_bytes  # 10 MiB upload + 64 KiB multipart framing = 10,551,296
UPLOAD_REFUSAL = "the image is larger than the 10 MiB upload limit (10,485,760 bytes)"


def test_default_body_cap_is_one_upload_plus_its_framing() -> None:
    assert CAP == 10 * MIB + 64 * 1024 == 10_551_296


async def test_50_mb_content_length_is_refused_before_reading(running_app: FastAPI) -> None:
    body = ScriptedReceive(itertools.repeat(b"\0" * MIB, 50))
    headers = [("content-type", "image/png"), ("content-length", str(50 * MIB))]
    response = await call_asgi(running_app, "POST", ANALYZE, headers, body)
    assert assert_error(response, 413, "payload_too_large") == UPLOAD_REFUSAL
    assert body.calls == 0
    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"  # refusals get every header
    await assert_healthy(running_app)


def streamed(head: bytes, chunks: int) -> tuple[Iterator[bytes], int]:
    """`head` then `chunks` MiB of zeros (lazily), and how many reads pass the cap exactly."""
    sizes = itertools.accumulate([len(head), *[MIB] * chunks])
    reads = next(index for index, total in enumerate(sizes, start=1) if total > CAP)
    return itertools.chain([head], itertools.repeat(b"\0" * MIB, chunks)), reads


@pytest.mark.parametrize(
    ("content_type", "head"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n"),
        (
            "multipart/form-data; boundary=cut",
            b'--cut\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n',
        ),
    ],
)
async def test_chunked_body_over_the_cap_is_refused_while_streaming(
    running_app: FastAPI, content_type: str, head: bytes
) -> None:
    chunks, reads_to_cross = streamed(head, 50)
    body = ScriptedReceive(chunks)
    headers = [("content-type", content_type), ("transfer-encoding", "chunked")]
    response = await call_asgi(running_app, "POST", ANALYZE, headers, body)
    assert assert_error(response, 413, "payload_too_large") == UPLOAD_REFUSAL
    assert body.calls == reads_to_cross == 12  # 11 MiB + head > 10.06 MiB; the rest never read
    await assert_healthy(running_app)


@pytest.mark.parametrize("content_type", ["image/png", "multipart/form-data; boundary=cut"])
async def test_an_image_one_byte_over_the_upload_limit_gets_the_same_words(
    running_app: FastAPI, content_type: str
) -> None:
    # The body fits the cap (the upload limit plus framing): the route refuses, in the same words.
    image = b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * MIB - 7)
    if content_type == "image/png":
        body = image
    else:
        body = (
            b'--cut\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--cut--\r\n"
        )
    assert len(image) == 10 * MIB + 1 and len(body) <= CAP
    headers = [("content-type", content_type), ("content-length", str(len(body)))]
    response = await call_asgi(running_app, "POST", ANALYZE, headers, ScriptedReceive([body]))
    assert assert_error(response, 413, "payload_too_large") == UPLOAD_REFUSAL


@pytest.mark.parametrize(
    ("size", "text"),
    [(900, "900 bytes"), (1024, "1 KiB"), (262_144, "256 KiB"), (1_536 * 1024, "1.5 MiB"),
     (10 * MIB, "10 MiB"), (CAP, "10.1 MiB")],
)  # fmt: skip
def test_sizes_are_stated_in_the_largest_unit_that_fits(size: int, text: str) -> None:
    assert size_text(size) == text


SLOW_BODIES = pytest.mark.parametrize(
    "settings", [Settings(body_timeout_seconds=0.3)], ids=["deadline-0.3s"]
)


@SLOW_BODIES
async def test_a_body_trickling_past_the_deadline_is_408(running_app: FastAPI) -> None:
    body = ScriptedReceive([b"\x89PNG\r\n\x1a\n"] * 20, delay=0.05)
    headers = [("content-type", "image/png")]
    response = await call_asgi(running_app, "POST", ANALYZE, headers, body)
    assert "0.3 s" in assert_error(response, 408, "request_timeout")
    assert response.headers["connection"] == "close"
    assert body.calls < 20
    await assert_healthy(running_app)


@SLOW_BODIES
async def test_a_body_arriving_in_time_is_read_whole(running_app: FastAPI) -> None:
    body = ScriptedReceive([b"\x89PNG\r\n\x1a\n"] + [b"\x00"] * 9, delay=0.01)
    response = await call_asgi(running_app, "POST", ANALYZE, [("content-type", "image/png")], body)
    assert_error(response, 422, "corrupt_image")  # every byte arrived and reached the decoder
    assert body.calls == 10 + 1  # ten chunks, then the disconnect watcher's read


@pytest.mark.parametrize("value", ["abc", "-1", "1e9", "12 34"])
async def test_invalid_content_length_is_400(running_app: FastAPI, value: str) -> None:
    headers = [("content-type", "image/png"), ("content-length", value)]
    assert_error(await call_asgi(running_app, "POST", ANALYZE, headers), 400, "bad_request")


async def test_conflicting_content_lengths_are_400(running_app: FastAPI) -> None:
    headers = [("content-length", "10"), ("content-length", "20")]
    assert_error(await call_asgi(running_app, "POST", ANALYZE, headers), 400, "bad_request")


async def test_header_count_limit(running_app: FastAPI) -> None:
    at_limit = [(f"x-h{i}", "v") for i in range(100)]
    assert (await call_asgi(running_app, "GET", "/healthz", at_limit)).status_code == 200
    response = await call_asgi(running_app, "GET", "/healthz", [*at_limit, ("x-one-more", "v")])
    assert "101 headers" in assert_error(response, 431, "headers_too_large")
    await assert_healthy(running_app)


async def test_header_size_limit(running_app: FastAPI) -> None:
    response = await call_asgi(running_app, "GET", "/healthz", [("cookie", "c" * 16 * 1024)])
    assert_error(response, 431, "headers_too_large")
    await assert_healthy(running_app)


def body_echo_app(
    extra_read: bool = False, think: float = 0.0
) -> Callable[[Scope, Receive, Send], object]:
    """A bare ASGI app that reads its whole body (after `think` seconds) and answers its length."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep(think)
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        last = (await receive())["type"] if extra_read else ""
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{size} {last}".encode()})

    return app


def tiny_limits(timeout: float = 5.0, json_bytes: int = 1000) -> RequestLimits:
    return RequestLimits(
        max_upload_bytes=900,
        max_body_bytes=1000,
        body_timeout_seconds=timeout,
        max_header_count=10,
        max_header_bytes=500,
        max_json_body_bytes=json_bytes,
    )


@pytest.mark.parametrize(
    ("content_type", "cap"),
    [
        ("image/png", 1000),
        ("multipart/form-data; boundary=x", 1000),
        ("Image/JPEG", 1000),
        ("application/json", 100),
        ("text/plain", 100),
        (None, 100),
    ],
)
async def test_only_image_uploads_get_the_upload_cap(content_type: str | None, cap: int) -> None:
    app = RequestLimitsMiddleware(body_echo_app(), tiny_limits(json_bytes=100))
    headers = [("content-type", content_type)] if content_type else []
    for size, status in ((cap, 200), (cap + 1, 413)):
        streamed = await call_asgi(app, "POST", "/", headers, ScriptedReceive([b"a" * size]))
        assert streamed.status_code == status
        announced = [*headers, ("content-length", str(size))]
        unread = ScriptedReceive([b"a" * size])
        head = await call_asgi(app, "POST", "/", announced, unread)
        assert head.status_code == status
        assert unread.calls == (1 if status == 200 else 0)
        if status == 413:
            assert (
                streamed.json()["error"]["message"]
                == head.json()["error"]["message"]
                == (
                    "the image is larger than the 900 bytes upload limit (900 bytes)"
                    if cap == 1000
                    else "the request body is larger than the 100 bytes limit for JSON (100 bytes)"
                )
            )


@pytest.mark.parametrize(("size", "status"), [(1000, 200), (1001, 413)])
async def test_the_cap_is_exact_for_any_reader(size: int, status: int) -> None:
    # A bare app (no FastAPI handlers): the middleware answers in the one shape by itself.
    app = RequestLimitsMiddleware(body_echo_app(), tiny_limits())
    chunks = [b"a" * 300] * (size // 300) + [b"a" * (size % 300)]
    response = await call_asgi(app, "POST", "/", receive=ScriptedReceive(chunks))
    assert response.status_code == status
    if status == 200:
        assert response.body == b"1000 "
    else:
        assert response.json()["error"]["code"] == "payload_too_large"


async def test_the_deadline_ends_with_the_body() -> None:
    # After the last byte, reads wait for the disconnect however long that takes.
    app = RequestLimitsMiddleware(body_echo_app(extra_read=True), tiny_limits(timeout=0.2))
    body = ScriptedReceive([b"abc"])
    async with anyio.create_task_group() as group:
        group.start_soon(body_disconnect_later, body, 0.4)
        response = await call_asgi(app, "POST", "/", receive=body)
    assert response.status_code == 200
    assert response.body == b"3 http.disconnect"


async def test_the_deadline_starts_when_the_app_reads() -> None:
    # An app busy for longer than the deadline before reading is not a slow client.
    app = RequestLimitsMiddleware(body_echo_app(think=0.3), tiny_limits(timeout=0.2))
    response = await call_asgi(app, "POST", "/", receive=ScriptedReceive([b"abcd"]))
    assert (response.status_code, response.body) == (200, b"4 ")


async def body_disconnect_later(body: ScriptedReceive, delay: float) -> None:
    await anyio.sleep(delay)
    body.disconnect.set()


async def test_limited_receive_counts_bytes() -> None:
    limited = LimitedReceive(ScriptedReceive([b"ab", b"cde", b""]), tiny_limits(), BodyLimit(9, ""))
    for _ in range(3):
        await limited()
    assert (limited.body_bytes, limited.complete) == (5, True)


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.01)


@pytest.mark.parametrize(
    "settings", [Settings(inference_concurrency=1, queue_size=1)], ids=["one-seat"]
)
async def test_a_disconnected_client_frees_its_place_in_the_queue(running_app: FastAPI) -> None:
    queue = running_app.state.queue
    headers = [("content-type", "image/png")]
    photos = [encode(gradient_image(40 + i, 30), "PNG") for i in range(3)]
    release = threading.Event()
    answers: dict[str, object] = {}

    async def post(name: str, photo: bytes, body: ScriptedReceive) -> None:
        answers[name] = await call_asgi(running_app, "POST", ANALYZE, headers, body)

    async with anyio.create_task_group() as group:
        group.start_soon(queue.run, release.wait, 30)  # holds the only running seat
        await wait_until(lambda: queue.running == 1)
        leaver = ScriptedReceive([photos[0]])
        group.start_soon(post, "leaver", photos[0], leaver)
        await wait_until(lambda: queue.admitted == 2)

        full = await call_asgi(running_app, "POST", ANALYZE, headers, ScriptedReceive([photos[1]]))
        assert_error(full, 503, "busy")
        assert full.headers["retry-after"] == "2"

        leaver.disconnect.set()
        await wait_until(lambda: "leaver" in answers)
        assert answers["leaver"].status_code == 499
        assert queue.admitted == 1  # the waiting place is free again

        group.start_soon(post, "next", photos[2], ScriptedReceive([photos[2]]))
        await wait_until(lambda: queue.admitted == 2)
        release.set()
        await wait_until(lambda: "next" in answers)
    assert answers["next"].status_code == 200, answers["next"].text
    assert queue.admitted == 0
    await assert_healthy(running_app)
