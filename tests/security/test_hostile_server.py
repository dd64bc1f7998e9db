"""A real server under hostile uploads and bodies: decode bombs that cost time, files that cost
memory, oversized JSON. One server for the module (starting one takes seconds).

The server runs with the JPEG scan check off, so the scan bombs really reach the decoder and are
stopped by the deadline alone (the check itself is tested in-process in test_decode_bombs.py).
"""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache, partial

import httpx
import pytest

from app.launch import ServerProcess, running_server_process
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import flat_png, noise_png, scan_bomb
from tests.security.proc import MIB, peak_rise, reset_peak

pytestmark = pytest.mark.e2e

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"
DEADLINE = 2.0
SENT_AFTER = 1.0
"""As in the issue: the normal upload comes a second after the bombs (it waited 66.8 s)."""
BUDGET = 256 * MIB
ENV = {
    "CONVLENS_DECODE_TIMEOUT_SECONDS": str(DEADLINE),
    "CONVLENS_MAX_JPEG_SCANS": "0",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server_process(ENV) as started:
        yield started


@cache
def bomb(variant: int) -> bytes:
    """7–14 s of decoding here, 3.7 s on the issue's machine: always past the 2 s deadline."""
    return scan_bomb(6300, 1_000) + bytes(variant)  # each variant a different upload


def post_image(http: httpx.Client, data: bytes, kind: str = "image/png") -> httpx.Response:
    return http.post(ANALYZE, files={"image": ("x", data, kind)})


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def at_once(
    calls: dict[str, Callable[[], httpx.Response]],
) -> dict[str, tuple[httpx.Response, float]]:
    """Run every call in its own thread, started together; each one's response and duration."""
    results: dict[str, tuple[httpx.Response, float]] = {}
    barrier = threading.Barrier(len(calls))

    def run(name: str, call: Callable[[], httpx.Response]) -> None:
        barrier.wait()
        results[name] = timed(call)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def slowest_upload(http: httpx.Client, seeds: range) -> float:
    """The slowest of a few normal uploads (each a new file), so a busy test machine's own
    hiccups count as idle time (on a quiet machine they agree within a few ms)."""
    return max(timed(lambda seed=seed: post_image(http, noise_png(seed)))[1] for seed in seeds)


def test_two_scan_bombs_and_a_normal_upload(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        post_image(http, noise_png(100))  # warm-up
        idle_before = slowest_upload(http, range(101, 104))
        bombs, normal_file = [bomb(1), bomb(2)], noise_png(110)

        def delayed_normal() -> httpx.Response:
            time.sleep(SENT_AFTER)
            return post_image(http, normal_file)

        results = at_once(
            {
                "bomb 1": lambda: post_image(http, bombs[0], "image/jpeg"),
                "bomb 2": lambda: post_image(http, bombs[1], "image/jpeg"),
                "normal": delayed_normal,
            }
        )
        idle = max(idle_before, slowest_upload(http, range(104, 107)))
    normal, took = results["normal"]
    assert normal.status_code == 200, normal.text
    took -= SENT_AFTER
    assert took <= 2 * idle, f"normal upload {took:.3f} s, idle {idle:.3f} s"
    for name in ("bomb 1", "bomb 2"):
        response, seconds = results[name]
        assert response.status_code == 422, response.text[:300]
        error = response.json()["error"]
        assert error["code"] == "image_too_complex"
        assert f"within {DEADLINE:g} s" in error["message"]
        assert DEADLINE <= seconds < DEADLINE + 1.0


@cache
def hostile_requests() -> dict[str, tuple[str, bytes, str]]:
    """name → (path, body, content type): each once cost the server hundreds of MB or seconds."""
    wide_grey, rgba = flat_png(6300, 16, 0), flat_png(6300, 8, 6)
    json_10mb = b'{"input": [[[' + b"0," * (5 * MIB) + b'0]]], "kernels": [[[[1]]]]}'
    return {
        "16-bit grey 6300² PNG": (ANALYZE, wide_grey, "image/png"),
        "RGBA 6300² PNG": (ANALYZE, rgba, "image/png"),
        "10 MB JSON": ("/api/v1/playground/conv", json_10mb, "application/json"),
        "scan bomb": (ANALYZE, bomb(3), "image/jpeg"),
    }


def send(http: httpx.Client, path: str, body: bytes, content_type: str) -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": content_type})


@pytest.mark.parametrize("name", ["16-bit grey 6300² PNG", "RGBA 6300² PNG", "10 MB JSON"])
def test_no_single_request_raises_the_server_s_memory_by_more_than_the_budget(
    server: ServerProcess, name: str
) -> None:
    path, body, content_type = hostile_requests()[name]
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        # A harmless request to the same route first: what it pages in is not the attack's.
        if path == ANALYZE:
            post_image(http, noise_png(200 + len(body) % 97))
        else:
            http.post(path, json={"input": [[[1, 2], [3, 4]]], "kernels": [[[[1]]]]})
        before = reset_peak(server.pid)
        response = send(http, path, body, content_type)
        rise = peak_rise(server.pid, before)
    assert rise <= BUDGET, f"{name}: +{rise / MIB:.0f} MiB"
    # 200 or 413 as the budget decides; 422 if a busy machine pushed the decode past the deadline.
    assert response.status_code in (200, 413, 422), response.text[:300]


PROBE = """
import sys, time, httpx
base, seconds = sys.argv[1], float(sys.argv[2])
with httpx.Client(base_url=base, timeout=30) as http:
    http.get("/healthz")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        http.get("/healthz").raise_for_status()
        print(time.perf_counter() - started, flush=True)
        time.sleep(0.02)
"""


def probing(base_url: str, seconds: float) -> subprocess.Popen[str]:
    """/healthz timed from another process (this one's threads would share its GIL)."""
    command = [sys.executable, "-c", PROBE, base_url, str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def latencies(prober: subprocess.Popen[str]) -> list[float]:
    output, _ = prober.communicate(timeout=60)
    assert prober.returncode == 0
    return [float(line) for line in output.split()]


PROBE_SECONDS = 3.0
"""Long enough to cover the attack (8 JSON parses took 4.3 s in all before, 0.3 s now)."""


def test_eight_10_mb_json_bodies_leave_healthz_answering(server: ServerProcess) -> None:
    """The issue's attack: eight 10 MB JSON bodies at once to the playground (they added 1.6 GB
    and /healthz took 5.7 s; 1.9 s here). The slowest /healthz during them is within 10× the
    slowest of as many seconds of idle probes (a shared test machine stalls an idle probe now
    and then), and the server's memory stays within one request's budget."""
    idle = max(latencies(probing(server.base_url, PROBE_SECONDS)))
    path, body, content_type = hostile_requests()["10 MB JSON"]
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        calls = {
            f"json #{copy}": partial(send, http, path, body + bytes(copy), content_type)
            for copy in range(8)
        }
        before = reset_peak(server.pid)
        prober = probing(server.base_url, PROBE_SECONDS)
        results = at_once(calls)
        during = latencies(prober)
        rise = peak_rise(server.pid, before)
    assert len(during) >= 10
    worst = max(during)
    assert worst <= 10 * idle, f"healthz idle {idle * 1e3:.1f} ms, worst {worst * 1e3:.1f} ms"
    assert rise <= BUDGET, f"+{rise / MIB:.0f} MiB"
    assert [response.status_code for response, _ in results.values()] == [413] * 8
