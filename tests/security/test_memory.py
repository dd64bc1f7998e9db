"""Memory per request is bounded: decoding happens in worker processes with an address-space
limit after a mode-aware estimate, JSON bodies are capped, and the playground has its own few
threads.

Today's figures from the issue: a 77 KB 16-bit grey 6300² PNG added ~1.3 GB to the server, a
154 KB RGBA one ~0.76 GB, a 10 MB JSON body to the playground 363 MB.
"""

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from functools import cache, partial

import anyio
import httpx
import numpy as np
import pytest
import torch
from fastapi import FastAPI
from PIL import Image

from app.api.routes.playground import playground_threads
from app.config import Settings
from app.core.decode import (
    ImageTooLargeError,
    decode_image,
    decoding_bytes,
    open_image,
    webp_canvas_size,
)
from app.core.preprocess import input_from_pixels, normalize
from app.services.decoding import DecodeLimits, DecodePool
from app.services.inference import QueueFullError, fix_mmap_threshold, limit_malloc_arenas
from app.services.threads import BoundedThreads
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL, bundled_preprocessing
from tests.security.payloads import flat_png, gradient_image, scan_bomb, webp_bomb
from tests.security.proc import MIB, address_space_limit, peak_rise, reset_peak, status_kib
from tests.security.rawasgi import ScriptedReceive, assert_error, assert_healthy, call_asgi

CAP = Settings().max_image_pixels
BUDGET = Settings().request_memory_bytes
IMAGENET = bundled_preprocessing(PHOTO_MODEL)  # shorter side 256, centre 224², ImageNet mean/std
SIDE_PIXELS = 6300 * 6300  # 39,690,000
linux_only = pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_threshold() -> None:
    # Off by default in the server since analyses keep no maps (bench/analyze.py); decode workers
    # set it so a large decode's memory goes back before their next job.
    assert Settings().mmap_threshold_bytes == 0
    assert fix_mmap_threshold(64 * 1024) is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_server_limits_malloc_to_two_arenas() -> None:
    # bench/classroom.py: a cold class's peak RSS 1,408 MiB with glibc's default, 988 MiB with 2
    assert Settings().malloc_arenas == 2
    assert limit_malloc_arenas(2) is True


def test_default_memory_budget_per_request_is_256_mib() -> None:
    assert BUDGET == 256 * MIB


@cache
def wide_grey_png() -> bytes:
    return flat_png(6300, 16, 0)  # 77 KB


@cache
def rgba_png() -> bytes:
    return flat_png(6300, 8, 6)  # 154 KB


def test_the_files_are_the_issue_s() -> None:
    assert 76_000 < len(wide_grey_png()) < 78_000
    assert 153_000 < len(rgba_png()) < 155_000


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        # I;16 is held in 2 bytes a pixel, its 8-bit L copy in 1.
        (wide_grey_png, SIDE_PIXELS * (2 + 1)),
        # RGBA (4 bytes) composited onto white into RGB (Pillow keeps RGB in 4 bytes too).
        (rgba_png, SIDE_PIXELS * (4 + 4)),
        # RGB kept as is: 4 bytes a pixel, no conversion.
        (partial(flat_png, 1000, 8, 2), 1000 * 1000 * 4),
        # Progressive grey JPEG: 1 byte a pixel + every 8×8 block's 64 coefficients of 2 bytes
        # (788 = ceil(6300 / 8) blocks a side) that a multi-scan decode keeps whole.
        (partial(scan_bomb, 6300, 0), SIDE_PIXELS * 1 + 788 * 788 * 128),
    ],
    ids=["I;16", "RGBA", "RGB", "progressive grey JPEG"],
)
def test_decoding_bytes_by_mode(build: Callable[[], bytes], expected: int) -> None:
    assert decoding_bytes(open_image(build())) == expected


def test_a_4_4_4_progressive_colour_jpeg_counts_three_full_coefficient_planes() -> None:
    data = encode(gradient_image(100, 60), "JPEG", progressive=True, subsampling=0)
    # 13 × 8 blocks a plane (ceil(100 / 8), ceil(60 / 8)), three planes of 128-byte blocks
    assert decoding_bytes(open_image(data)) == 100 * 60 * 4 + 3 * 13 * 8 * 128


@pytest.mark.parametrize(
    ("options", "chunk"),
    [({"quality": 50}, b"VP8 "), ({"lossless": True}, b"VP8L"), ({"exif": b"II*\0"}, b"VP8X")],
)
def test_webp_canvas_size_is_read_from_each_kind_of_header(
    options: dict[str, object], chunk: bytes
) -> None:
    data = encode(gradient_image(1234, 567), "WEBP", **options)
    assert data[12:16] == chunk
    assert webp_canvas_size(data) == (1234, 567)
    assert webp_canvas_size(encode(gradient_image(8, 8), "PNG")) is None


def test_a_webp_counts_its_decoder_s_two_canvases() -> None:
    data = encode(gradient_image(100, 60), "WEBP", lossless=True)
    assert decoding_bytes(open_image(data)) == 100 * 60 * (4 + 2 * 4)  # RGB kept, two RGBA canvases


def test_a_webp_bomb_is_refused_before_pillow_opens_it() -> None:
    # 6000² × 8 bytes = 288,000,000 bytes (275 MiB) of canvases, declared in 30 bytes.
    with pytest.raises(ImageTooLargeError) as raised:
        decode_image(webp_bomb(6000, 6000), CAP, max_bytes=BUDGET)
    assert str(raised.value) == (
        "decoding this 6000×6000 WebP image needs 275 MiB of memory; the limit is 256 MiB"
    )
    with pytest.raises(ImageTooLargeError, match="16383×16383 = 268,402,689 pixels"):
        decode_image(webp_bomb(16383, 16383), CAP)


def test_the_rgba_bomb_is_refused_from_its_header() -> None:
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as raised:
        decode_image(rgba_png(), CAP, max_bytes=BUDGET)
    assert time.perf_counter() - started < 0.5
    assert str(raised.value) == (
        "decoding this 6300×6300 RGBA image needs 303 MiB of memory; the limit is 256 MiB"
    )


@linux_only
@pytest.mark.anyio
async def test_the_wide_grey_png_decodes_in_a_worker_not_in_this_process() -> None:
    # Memory is the point here, not time: a loaded machine may take more than the default 3 s.
    limits = DecodeLimits(timeout_seconds=60, memory_bytes=BUDGET, max_jpeg_scans=100)
    with DecodePool(limits, workers=1, max_waiting=4) as decoder:
        await decoder.model_pixels(encode(gradient_image(8, 8), "PNG"), CAP, IMAGENET)  # warm
        before = reset_peak(os.getpid())
        tensor = input_from_pixels(
            await decoder.model_pixels(wide_grey_png(), CAP, IMAGENET), IMAGENET
        )
        assert peak_rise(os.getpid(), before) < 16 * MIB
        black = normalize(torch.zeros(3, 224, 224), IMAGENET)
        assert np.array_equal(tensor.numpy(), black.numpy())
        for pid in decoder.worker_pids():
            limit = address_space_limit(pid)
            assert limit is not None
            assert status_kib(pid, "VmPeak") * 1024 <= limit
            assert limit - status_kib(pid, "VmSize") * 1024 <= BUDGET


@linux_only
@pytest.mark.anyio
async def test_the_address_space_limit_stops_what_the_estimate_misses() -> None:
    # An upright copy of a rotated photo is not in the estimate (48 MB for 4000×3000 RGB): with
    # 64 MiB the estimate lets it in, and the worker's address-space limit stops the copy.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(Image.new("RGB", (4000, 3000), (200, 30, 30)), "JPEG", exif=exif.tobytes())
    assert decoding_bytes(open_image(rotated)) == 4000 * 3000 * 4 < 64 * MIB
    limits = DecodeLimits(timeout_seconds=10, memory_bytes=64 * MIB, max_jpeg_scans=100)
    with DecodePool(limits, workers=1, max_waiting=4) as pool:
        (pid,) = pool.worker_pids()
        with pytest.raises(ImageTooLargeError) as raised:
            await pool.model_pixels(rotated, CAP, IMAGENET)
        assert "more than 64 MiB" in str(raised.value)
        assert pool.worker_pids() != [pid]  # a worker that ran out is replaced
        small = input_from_pixels(
            await pool.model_pixels(encode(gradient_image(40, 30), "JPEG"), CAP, IMAGENET), IMAGENET
        )
        assert small.shape == (3, 224, 224)


PLAYGROUND = "/api/v1/playground/conv"


@pytest.mark.anyio
async def test_ten_megabyte_json_is_refused_unread(running_app: FastAPI) -> None:
    body = ScriptedReceive([b"[" * MIB] * 10)
    headers = [("content-type", "application/json"), ("content-length", str(10 * MIB))]
    response = await call_asgi(running_app, "POST", PLAYGROUND, headers, body)
    message = assert_error(response, 413, "payload_too_large")
    assert body.calls == 0
    assert message == "the request body is larger than the 256 KiB limit for JSON (262,144 bytes)"
    await assert_healthy(running_app)


@pytest.mark.anyio
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
async def test_a_streamed_json_body_stops_at_the_cap(
    running_app: FastAPI, content_type: str | None
) -> None:
    body = ScriptedReceive([b"[" * (64 * 1024)] * 160)  # 10 MiB in 64 KiB chunks
    headers = [("content-type", content_type)] if content_type else []
    response = await call_asgi(running_app, "POST", PLAYGROUND, headers, body)
    assert_error(response, 413, "payload_too_large")
    assert body.calls == 5  # 5 × 64 KiB = 320 KiB is the first read past 256 KiB


@pytest.mark.anyio
async def test_the_largest_playground_body_fits_the_json_cap(client: httpx.AsyncClient) -> None:
    value = -1.2345678901234567e-05  # every number written as long as JSON floats get
    body = {
        "input": [[[value] * 32] * 32] * 3,
        "kernels": [[[[value] * 11] * 11] * 3] * 8,
        "bias": [value] * 8,
        "stride": 3,
    }
    assert 140_000 < len(json.dumps(body)) < Settings().max_json_body_bytes
    response = await client.post(PLAYGROUND, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["output_shape"] == [8, 8, 8]


@pytest.mark.anyio
async def test_playground_work_waits_for_its_own_bounded_threads(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    threads = BoundedThreads("test playground", concurrency=1, max_waiting=0, retry_after=3)
    app.dependency_overrides[playground_threads] = lambda: threads
    release = threading.Event()
    body = {"input": [[[1, 2], [3, 4]]], "kernels": [[[[1]]]]}
    async with anyio.create_task_group() as group:
        group.start_soon(threads.run, release.wait)
        await anyio.sleep(0.05)
        busy = await client.post(PLAYGROUND, json=body)
        release.set()
    assert_error(busy, 503, "busy")
    assert busy.headers["retry-after"] == "3"
    answered = await client.post(PLAYGROUND, json=body)
    assert answered.json()["output"] == [[[1, 2], [3, 4]]]


@pytest.mark.anyio
async def test_bounded_threads_run_at_most_their_concurrency() -> None:
    threads = BoundedThreads("test", concurrency=2, max_waiting=3)
    running = peak = 0
    lock = threading.Lock()
    loop_thread = threading.get_ident()

    def work() -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return threading.get_ident()

    idents: list[int] = []

    async def run_and_keep() -> None:
        idents.append(await threads.run(work))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(run_and_keep)
        await anyio.sleep(0.01)
        with pytest.raises(QueueFullError):
            await threads.run(work)  # 2 running + 3 waiting: the sixth is refused
    assert peak == 2
    assert len(idents) == 5 and loop_thread not in idents
