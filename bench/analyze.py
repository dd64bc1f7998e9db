"""Benchmark: what does seeing every layer cost over a bare forward?

Measured side by side in one run, interleaved round by round so machine noise hits every variant
alike (EfficientNet-Lite0 by default, one torch thread as the server runs):
  bare       torch.inference_mode() forward of the preprocessed photo, in this process, by the
             model as its code builds it (contiguous: a copy of the served module, which its
             spec may lay out channels-last)
  analyze    core.analyze: the same forward through the layer program, every layer summarized
  http       POST /analyze of a photo the server has never seen (one pixel differs each round)
             to a real uvicorn server on loopback: upload, decode, resize, forward, statistics,
             the durable record write and JSON
  http-224²  the same for a new 224² crop of the photo (the model's input size; the size the
             issue measured with)
  http-64k   the same against a second server that returns freed blocks of 64 KiB and more to
             the OS at once (CONVLENS_MMAP_THRESHOLD_BYTES=65536, the old default), to decide
             that setting by measurement
  http-threads the same against a third server that summarizes layers on threads beside the
             forward (CONVLENS_STATISTICS_WAITING_BYTES=32 MiB), to decide that setting by
             measurement
  layer      opening a layer of that fresh analysis (GET one channel of --layer), vs
  to-layer   an in-process forward that stops at that layer
Then RSS of both servers after 100 distinct analyses.

Run: `.venv/bin/python bench/analyze.py [--rounds 15] [--write docs/benchmarks.md]`.
"""

import argparse
import copy
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from app.config import REPO_ROOT, Settings
from app.core.analysis import analyze
from app.core.capture import capture_layers
from app.core.preprocess import decode_image, to_model_input
from app.core.registry import ModelRegistry
from app.launch import running_server_process, status_mib

PHOTO = "chelsea.png"


def photo_variants(count: int, side: int | None = None) -> list[bytes]:
    """``count`` PNGs of the photo (its centre ``side``² when given), each differing from the
    others in one pixel (a new upload)."""
    import skimage

    pixels = np.asarray(Image.open(Path(skimage.__file__).parent / "data" / PHOTO).convert("RGB"))
    if side is not None:
        top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
        pixels = pixels[top : top + side, left : left + side]
    variants = []
    for index in range(count):
        changed = pixels.copy()
        changed[index // pixels.shape[1], index % pixels.shape[1], 0] ^= 1
        buffer = io.BytesIO()
        Image.fromarray(changed).save(buffer, format="PNG")
        variants.append(buffer.getvalue())
    return variants


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--layer", default="_blocks.5")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--distinct", type=int, default=100, help="analyses before reading RSS")
    parser.add_argument("--write", type=Path, default=None, help="append results to this file")
    args = parser.parse_args()

    threads = Settings().torch_threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    registry = ModelRegistry.from_specs(REPO_ROOT / "models", torch.device("cpu"))
    model = registry.get(args.model)
    uploads = iter(photo_variants(4 + 3 * args.rounds + 2 * args.distinct))
    side = model.spec.preprocess.height
    squares = iter(photo_variants(args.rounds, side))  # the photo size the issue measured
    inputs = to_model_input(decode_image(next(uploads), 10**9), model.spec.preprocess)
    batch = inputs.unsqueeze(0)

    plain = copy.deepcopy(model.module).to(memory_format=torch.contiguous_format)

    def bare() -> None:
        with torch.inference_mode():
            plain(batch)

    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "bare",
            "analyze",
            "http",
            f"http-{side}²",
            "http-64k",
            "http-threads",
            "layer",
            "to-layer",
        )
    }
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as data_a,
        tempfile.TemporaryDirectory() as data_b,
        tempfile.TemporaryDirectory() as data_c,
        running_server_process({"CONVLENS_DATA_DIR": data_a}) as server,
        running_server_process(
            {"CONVLENS_DATA_DIR": data_b, "CONVLENS_MMAP_THRESHOLD_BYTES": "65536"}
        ) as threshold,
        running_server_process(
            {"CONVLENS_DATA_DIR": data_c, "CONVLENS_STATISTICS_WAITING_BYTES": str(32 * 1024**2)}
        ) as threaded,
        httpx.Client(timeout=120) as http,
    ):
        url = f"/api/v1/models/{args.model}/analyze"

        def post(base: str, data: bytes) -> str:
            response = http.post(base + url, content=data, headers={"content-type": "image/png"})
            response.raise_for_status()
            return response.json()["analysis_id"]

        for _ in range(3):  # warm-up (first forwards, first layer tables)
            data = next(uploads)
            (
                bare(),
                analyze(model, inputs),
                post(server.base_url, data),
                post(threshold.base_url, data),
                post(threaded.base_url, data),
            )
        for _ in range(args.rounds):
            samples["bare"].append(timed(bare))
            samples["analyze"].append(timed(analyze, model, inputs))
            started = time.perf_counter()
            analysis_id = post(server.base_url, next(uploads))
            samples["http"].append(time.perf_counter() - started)
            samples[f"http-{side}²"].append(timed(post, server.base_url, next(squares)))
            samples["http-64k"].append(timed(post, threshold.base_url, next(uploads)))
            samples["http-threads"].append(timed(post, threaded.base_url, next(uploads)))
            channel = (
                f"{server.base_url}/api/v1/analyses/{analysis_id}/layers/{args.layer}/channels/0"
            )
            samples["layer"].append(timed(lambda url=channel: http.get(url).raise_for_status()))
            samples["to-layer"].append(timed(capture_layers, model.program, batch, [args.layer]))
        for _ in range(args.distinct):
            post(server.base_url, next(uploads))
            post(threshold.base_url, next(uploads))
        rss = {
            "default": status_mib(server.pid, "VmRSS"),
            "64k": status_mib(threshold.pid, "VmRSS"),
        }
    load_after = os.getloadavg()

    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    lines = [
        f"### analyze: {args.model}, {PHOTO} (a new photo each round), {args.rounds} interleaved "
        f"rounds, torch {torch.__version__}, {threads} thread(s); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after",
        "",
        "| measurement | median ms | ratio to bare forward |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {value:.1f} | {value / median['bare']:.2f}× |"
        for name, value in median.items()
    ]
    lines += [
        "",
        f"- HTTP analyze ÷ bare forward: **{median['http'] / median['bare']:.2f}×** (goal ≤ 1.5×),"
        f" **{median[f'http-{side}²'] / median['bare']:.2f}×** for a {side}² photo;"
        f" with the 64 KiB mmap threshold {median['http-64k'] / median['bare']:.2f}×;"
        f" statistics on threads beside the forward {median['http-threads'] / median['bare']:.2f}×",
        f"- in-process analyze ÷ bare forward: **{median['analyze'] / median['bare']:.2f}×**",
        f"- opening `{args.layer}` over HTTP ÷ an in-process forward up to it: "
        f"**{median['layer'] / median['to-layer']:.2f}×**",
        f"- RSS after {args.distinct + args.rounds + 3} distinct analyses: "
        f"{rss['default']:.0f} MiB (default), {rss['64k']:.0f} MiB (64 KiB mmap threshold)",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
