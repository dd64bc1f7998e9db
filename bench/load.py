"""Load test: how many students can upload at the same moment, how fast they are served, and
whether the server's memory stays bounded over a long session.

Against a real `convlens serve` on loopback (default settings unless `--env NAME=VALUE`):
  stampede  N clients each upload one distinct photo at the same instant, N = 16, 32, 64, …;
            per level: success rate, status mix, p50/p95/p99 latency. Stops at the first level
            under 99 % success (or when the time budget is spent).
  soak      `--soak` requests (default 5,000) from `--clients` (default 60) clients in a closed
            loop, as a class exploring: uploads of distinct photos and digits, then reads of the
            analysis, layer maps and atlases; server RSS (VmRSS, VmHWM from /proc/<pid>/status)
            before and after.
Everything is bounded: each request has a timeout, and `--budget` seconds end the run early.
The client runs on the same machine as the server, so it takes some CPU from it.

Run: `.venv/bin/python bench/load.py [--soak 5000] [--clients 60] [--budget 900]`.
"""

import argparse
import asyncio
import io
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import skimage
from PIL import Image, ImageDraw

from app.launch import running_server_process

PHOTO_MODEL = "efficientnet-lite0"
DIGIT_MODEL = "lenet5-mnist"
LEVELS = (16, 32, 64, 96, 128, 160, 192, 256, 320)
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")


@dataclass
class Outcomes:
    """Status codes and latencies (seconds) of a batch of requests, by request kind."""

    statuses: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[status] += 1
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def success(self) -> float:
        ok = sum(count for status, count in self.statuses.items() if 200 <= status < 400)
        return ok / self.total if self.total else 0.0

    def mix(self) -> str:
        return ", ".join(f"{status}×{count}" for status, count in sorted(self.statuses.items()))


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


class Uploads:
    """Distinct upload bodies: phone-sized JPEG crops of real photos and hand-drawn digits."""

    def __init__(self, seed: int = 0) -> None:
        data = Path(skimage.__file__).parent / "data"
        self.photos = [Image.open(data / name).convert("RGB") for name in PHOTOS]
        self.random = random.Random(seed)

    def photo(self) -> bytes:
        source = self.random.choice(self.photos)
        side = min(source.size) - self.random.randrange(0, 40)
        left = self.random.randrange(0, source.width - side + 1)
        top = self.random.randrange(0, source.height - side + 1)
        crop = source.crop((left, top, left + side, top + side)).resize((640, 640))
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=self.random.randrange(80, 95))
        return buffer.getvalue()

    def digit(self) -> bytes:
        image = Image.new("L", (280, 280), 255)
        points = [
            (self.random.randrange(60, 220), self.random.randrange(40, 240)) for _ in range(4)
        ]
        ImageDraw.Draw(image).line(points, fill=0, width=self.random.randrange(14, 26))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the process in KiB: current and peak resident memory."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def timed_post(
    http: httpx.AsyncClient, outcomes: Outcomes, model: str, body: bytes, kind: str
) -> httpx.Response | None:
    start = time.perf_counter()
    try:
        response = await http.post(
            f"/api/v1/models/{model}/analyze",
            content=body,
            headers={"content-type": "image/jpeg" if kind == "photo" else "image/png"},
        )
    except httpx.HTTPError:
        outcomes.add(kind, 0, time.perf_counter() - start)
        return None
    outcomes.add(kind, response.status_code, time.perf_counter() - start)
    return response


async def stampede(http: httpx.AsyncClient, bodies: list[bytes]) -> Outcomes:
    """Every body uploaded at the same instant (one connection each)."""
    outcomes = Outcomes()
    await asyncio.gather(*(timed_post(http, outcomes, PHOTO_MODEL, b, "photo") for b in bodies))
    return outcomes


async def soak(
    http: httpx.AsyncClient,
    uploads: Uploads,
    models: set[str],
    requests: int,
    clients: int,
    deadline: float,
    pid: int,
) -> tuple[Outcomes, list[int]]:
    """`clients` students in a closed loop: upload, then look around the analysis.

    Also returns the server's VmRSS (KiB) sampled every 1,000 requests: flat means bounded.
    """
    outcomes = Outcomes()
    remaining = [requests]
    rss_samples: list[int] = []

    def take() -> bool:
        if remaining[0] <= 0 or time.monotonic() > deadline:
            return False
        remaining[0] -= 1
        if (requests - remaining[0]) % 1_000 == 0:
            rss_samples.append(rss_kib(pid)[0])
        return True

    async def get(kind: str, url: str) -> None:
        start = time.perf_counter()
        try:
            status = (await http.get(url)).status_code
        except httpx.HTTPError:
            status = 0
        outcomes.add(kind, status, time.perf_counter() - start)

    async def student(index: int) -> None:
        rng = random.Random(index)
        while take():
            digit = DIGIT_MODEL in models and rng.random() < 0.5
            kind = "digit" if digit else "photo"
            body = uploads.digit() if digit else uploads.photo()
            response = await timed_post(
                http, outcomes, DIGIT_MODEL if digit else PHOTO_MODEL, body, kind
            )
            if response is None or response.status_code != 200:
                continue
            analysis = response.json()
            for _ in range(rng.randrange(3, 8)):
                if not take():
                    return
                layer = rng.choice(analysis["layers"])
                choice = rng.random()
                if choice < 0.5:
                    await get("atlas", layer["atlas_url"])
                elif choice < 0.8:
                    await get("layer", layer["url"])
                else:
                    await get("analysis", f"/api/v1/analyses/{analysis['analysis_id']}")

    await asyncio.gather(*(student(index) for index in range(clients)))
    return outcomes, rss_samples


def latency_row(label: str, outcomes: Outcomes, kind: str | None = None) -> str:
    values = (
        outcomes.latencies.get(kind, [])
        if kind
        else [v for values in outcomes.latencies.values() for v in values]
    )
    p50, p95, p99 = percentiles(values) if values else (0.0, 0.0, 0.0)
    return f"| {label} | {len(values)} | {p50:,.0f} | {p95:,.0f} | {p99:,.0f} |"


async def run(base_url: str, pid: int, args: argparse.Namespace) -> list[str]:
    deadline = time.monotonic() + args.budget
    limits = httpx.Limits(max_connections=max(LEVELS) + 10, max_keepalive_connections=args.clients)
    uploads = Uploads()
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=args.timeout) as http:
        models = {model["id"] for model in (await http.get("/api/v1/models")).json()["models"]}
        await stampede(http, [uploads.photo() for _ in range(4)])  # warm-up
        started = rss_kib(pid)
        lines += [
            "| simultaneous uploads | success | status mix | p50 ms | p95 ms | p99 ms | wall s |",
            "|---:|---:|---|---:|---:|---:|---:|",
        ]
        best = 0
        for level in LEVELS:
            if time.monotonic() > deadline:
                lines.append(f"| {level} | (time budget spent) | | | | | |")
                break
            bodies = [uploads.photo() for _ in range(level)]
            start = time.perf_counter()
            outcomes = await stampede(http, bodies)
            wall = time.perf_counter() - start
            p50, p95, p99 = percentiles([v for vs in outcomes.latencies.values() for v in vs])
            lines.append(
                f"| {level} | {outcomes.success:.1%} | {outcomes.mix()} | {p50:,.0f} | "
                f"{p95:,.0f} | {p99:,.0f} | {wall:.1f} |"
            )
            if outcomes.success < 0.99:
                break
            best = level
        after_stampede = rss_kib(pid)
        lines += ["", f"Most simultaneous uploads at ≥ 99 % success: **{best}**.", ""]

        start = time.perf_counter()
        soaked, rss_samples = await soak(
            http, uploads, models, args.soak, args.clients, deadline, pid
        )
        wall = time.perf_counter() - start
        ended = rss_kib(pid)
    lines += [
        f"Soak: {soaked.total:,} requests from {args.clients} clients in {wall:.0f} s "
        f"({soaked.total / wall:.1f} req/s), success {soaked.success:.2%}, "
        f"status mix {soaked.mix()}.",
        "",
        "| request | count | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        *(latency_row(kind, soaked, kind) for kind in sorted(soaked.latencies)),
        latency_row("all", soaked),
        "",
        "| server memory | VmRSS MiB | VmHWM (peak) MiB |",
        "|---|---:|---:|",
        f"| after start-up and warm-up | {started[0] / 1024:,.0f} | {started[1] / 1024:,.0f} |",
        f"| after the stampedes | {after_stampede[0] / 1024:,.0f} | "
        f"{after_stampede[1] / 1024:,.0f} |",
        f"| after the soak | {ended[0] / 1024:,.0f} | {ended[1] / 1024:,.0f} |",
        "",
        "VmRSS during the soak, every 1,000 requests (MiB): "
        + ", ".join(f"{sample / 1024:,.0f}" for sample in rss_samples),
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak", type=int, default=5_000, help="soak requests (default 5,000)")
    parser.add_argument("--clients", type=int, default=60, help="soak clients (default 60)")
    parser.add_argument("--budget", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request")
    parser.add_argument(
        "--env", action="append", default=[], help="server setting NAME=VALUE (repeatable)"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with running_server_process(env=env) as server:
        lines = asyncio.run(run(server.base_url, server.pid, args))
    overrides = ", ".join(f"{name}={value}" for name, value in env.items()) or "none"
    header = [
        f"### load: {os.cpu_count()} cores, server defaults (overrides: {overrides}), "
        "client on the same machine",
        "",
    ]
    print("\n".join([*header, *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
