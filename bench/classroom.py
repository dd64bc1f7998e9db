"""Benchmark: a class of students on one machine, over loopback, against real `convlens serve`.

Each simulated student (asyncio + httpx, own connection) uploads a photo, then browses layers: for
each layer the atlas metadata and the atlas PNG, and channel values (by default 10 layers and 20
channels). Half the class uploads one of three shared photos (the teacher's), the other half a
photo of its own. Students start spread over `--ramp` seconds. The same class runs twice per
server: cold (fresh server) and warm (every analysis and atlas already cached). Servers: one
worker in-process; two workers sharing a throwaway Redis. Also measured: a repeat upload of the
same image (cached analysis), sequentially.

Run: `.venv/bin/python bench/classroom.py [--students 60] [--write docs/benchmarks.md]`.
Every run is bounded (`--run-timeout`) and the servers and Redis always stop.
"""

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from app.launch import child_processes, running_redis, running_server_process, status_mib

SKIMAGE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")
MODEL = "efficientnet-lite0"


def photo(name: str) -> Image.Image:
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def class_photos(students: int, seed: int) -> list[bytes]:
    """Every other student uploads one of three shared photos; the rest each a distinct crop."""
    rng = random.Random(seed)
    sources = [photo(name) for name in SKIMAGE_PHOTOS]
    shared = [jpeg(source) for source in sources[:3]]
    uploads = []
    for student in range(students):
        if student % 2 == 0:
            uploads.append(shared[student // 2 % 3])
            continue
        source = sources[rng.randrange(len(sources))]
        width, height = source.size
        left, top = rng.randrange(width // 4), rng.randrange(height // 4)
        crop = source.crop((left, top, left + width * 3 // 4, top + height * 3 // 4))
        uploads.append(jpeg(crop.resize((640, 480))))
    return uploads


@dataclass
class Tally:
    """Latencies (seconds) per request kind, errors, and the wall time of a run."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    async def get(self, http: httpx.AsyncClient, kind: str, url: str, **kwargs) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = await http.request(kwargs.pop("method", "GET"), url, **kwargs)
        except httpx.HTTPError as error:
            self.errors.append(f"{kind}: {type(error).__name__}")
            raise
        self.latencies[kind].append(time.perf_counter() - start)
        if response.status_code != 200:
            self.errors.append(f"{kind}: HTTP {response.status_code}")
        return response


async def student(
    base: str, upload: bytes, delay: float, rng: random.Random, tally: Tally, args
) -> None:
    await asyncio.sleep(delay)
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        try:
            made = await tally.get(
                http,
                "analyze",
                f"/api/v1/models/{MODEL}/analyze",
                method="POST",
                files={"image": ("photo.jpg", upload, "image/jpeg")},
            )
            if made.status_code != 200:
                return
            layers = made.json()["layers"]
            chosen = sorted(rng.sample(range(len(layers)), args.layers))
            for i, index in enumerate(chosen):
                layer = layers[index]
                await tally.get(http, "layer", layer["url"])
                await tally.get(http, "atlas", layer["atlas_url"])
                for _ in range(args.channels // args.layers + (i < args.channels % args.layers)):
                    channel = rng.randrange(layer["shape"][0])
                    await tally.get(http, "channel", f"{layer['url']}/channels/{channel}")
        except httpx.HTTPError:
            return


async def run_class(base: str, uploads: list[bytes], args, seed: int) -> Tally:
    tally = Tally()
    rng = random.Random(seed)
    delays = [rng.uniform(0, args.ramp) for _ in uploads]
    start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(
            *(
                student(base, upload, delay, random.Random(seed + i), tally, args)
                for i, (upload, delay) in enumerate(zip(uploads, delays, strict=True))
            )
        ),
        timeout=args.run_timeout,
    )
    tally.wall = time.perf_counter() - start
    return tally


async def repeat_analysis(base: str, upload: bytes, rounds: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        url = f"/api/v1/models/{MODEL}/analyze"
        files = {"image": ("photo.jpg", upload, "image/jpeg")}
        (await http.post(url, files=files)).raise_for_status()
        timings = []
        for _ in range(rounds):
            start = time.perf_counter()
            response = await http.post(url, files=files)
            timings.append(time.perf_counter() - start)
            assert response.json()["cached"] is True
        return timings


def peak_rss_mib(pid: int) -> list[int]:
    """Peak resident memory (VmHWM) of the server's workers: its children, else itself. Decode
    workers (small interpreters without torch, see `decode_peaks_mib`) are not workers."""
    children = [
        child
        for child, cmdline in child_processes(pid)
        if b"resource_tracker" not in cmdline and b"decode_worker" not in cmdline
    ]
    return [status_mib(worker, "VmHWM") for worker in children or [pid]]


def decode_peaks_mib(pid: int) -> list[int]:
    """Peak resident memory of the decode worker processes below the server."""
    workers = [pid, *(child for child, _ in child_processes(pid))]
    return [
        status_mib(child, "VmHWM")
        for worker in workers
        for child, cmdline in child_processes(worker)
        if b"decode_worker" in cmdline
    ]


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"


def table(label: str, tally: Tally) -> list[str]:
    total = sum(len(v) for v in tally.latencies.values())
    rows = [
        f"| {label} | {kind} | {len(values)} | {ms(values, 0.5)} | {ms(values, 0.95)} "
        f"| {max(values) * 1000:.0f} |"
        for kind, values in tally.latencies.items()
    ]
    kinds = ", ".join(f"{n}× {kind}" for kind, n in Counter(tally.errors).items())
    errors = f"{len(tally.errors)} errors" + (f" ({kinds})" if kinds else "")
    rows.append(
        f"| {label} | **all** | {total} | | | | {errors}, "
        f"{tally.wall:.1f} s wall, {total / tally.wall:.0f} req/s |"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--ramp", type=float, default=10.0, help="students start within (s)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--run-timeout", type=float, default=240.0)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    uploads = class_photos(args.students, seed=1)
    lines = [
        "| server | request | n | p50 ms | p95 ms | max ms | |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    repeat: list[float] = []
    loads = []
    memory: list[str] = []
    errors = 0
    with running_redis() as redis_url:
        setups = [
            ("1 worker", 1, {}),
            (
                "2 workers + Redis",
                2,
                {"CONVLENS_REDIS_URL": redis_url, "CONVLENS_INFERENCE_CONCURRENCY": "1"},
            ),
        ]
        for label, workers, env in setups:
            with (
                tempfile.TemporaryDirectory() as data_dir,  # a cold class: no stored records
                running_server_process(
                    env={**env, "CONVLENS_DATA_DIR": data_dir}, workers=workers
                ) as server,
            ):
                base = server.base_url
                for phase in ("cold", "warm"):
                    loads.append(f"{label} {phase}: {os.getloadavg()[0]:.1f}")
                    tally = asyncio.run(run_class(base, uploads, args, seed=7))
                    errors += len(tally.errors)
                    lines += table(f"{label}, {phase}", tally)
                    print("\n".join(lines[-len(tally.latencies) - 1 :]), flush=True)
                if workers == 1:
                    repeat = asyncio.run(repeat_analysis(base, uploads[1], args.repeats))
                decoders = decode_peaks_mib(server.pid)
                memory.append(
                    f"{label}: {' + '.join(map(str, peak_rss_mib(server.pid)))} MiB"
                    f" (and {len(decoders)} decode workers, {max(decoders, default=0)} MiB at most)"
                )
    summary = (
        f"Repeat analysis of the same photo (cached, {args.repeats} sequential POSTs of a "
        f"{len(uploads[1]) // 1024} kB JPEG): p50 {statistics.median(repeat) * 1000:.1f} ms, "
        f"p95 {ms(repeat, 0.95)} ms."
    )
    text = "\n".join(
        [
            f"## Classroom simulation ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)",
            "",
            f"{args.students} students, {MODEL}; each uploads a photo (half share 3 photos, half "
            f"upload their own), then opens {args.layers} layers (metadata + atlas PNG) and reads "
            f"{args.channels} channels; starts spread over {args.ramp:g} s. Cold = fresh server; "
            "warm = the same class again. Default settings; the 2-worker server also has "
            "CONVLENS_INFERENCE_CONCURRENCY=1 (one forward per core per worker).",
            "Load average (1 min) at the start of each run: " + "; ".join(loads) + ".",
            "",
            *lines,
            "",
            summary,
            "Peak resident memory of the workers: " + "; ".join(memory) + ".",
            "",
        ]
    )
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
