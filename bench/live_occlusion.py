"""Benchmark: live occlusion updates per second, and their exactness against full forwards.

One core (one torch thread), in process, as a dragged square moves: each update is one square
position through the exact local recomputation (clean stage maps kept per image). Positions follow
a drag path across the image; every answer is compared with a full forward of the occluded image.
Goal (issue 17): ≥ 10 updates/s for EfficientNet-Lite0, ≥ 30 for LeNet-5, exact to 1e-4.

Run: `.venv/bin/python bench/live_occlusion.py [--updates 60] [--write docs/benchmarks.md]`.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from app.config import REPO_ROOT
from app.core.attribution.occlusion import live_occlusion, occluded_logits
from app.core.registry import ModelRegistry
from app.services.analyses import model_input


def photo(name: str) -> bytes:
    import skimage

    return (Path(skimage.__file__).parent / "data" / name).read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    registry = ModelRegistry.from_specs(REPO_ROOT / "models", torch.device("cpu"))
    load_before = os.getloadavg()[0]
    rows = []
    for model_id in ("efficientnet-lite0", "lenet5-mnist"):
        model = registry.get(model_id)
        pre = model.spec.preprocess
        image = model_input(photo("chelsea.png"), 10**8, pre)
        fill = (model.spec.occlusion_fill - torch.tensor(pre.mean)) / torch.tensor(pre.std)
        _, height, width = image.shape
        size = max(1, min(height, width) // 7)
        started = time.perf_counter()
        live = live_occlusion(model.module, image)
        prepare = time.perf_counter() - started
        times, worst = [], 0.0
        for step in range(args.updates):  # a diagonal drag, there and back
            t = step / max(1, args.updates - 1)
            top = int((height - 1) * (t if step % 2 == 0 else 1 - t))
            left = int((width - 1) * t)
            started = time.perf_counter()
            logits = occluded_logits(live, top, left, size, fill)
            times.append(time.perf_counter() - started)
            occluded = image.clone()
            occluded[:, top : top + size, left : left + size] = fill.reshape(-1, 1, 1)
            with torch.inference_mode():
                full = model.module(occluded.unsqueeze(0))[0]
            worst = max(worst, float((logits - full).abs().max()))
        median = statistics.median(times)
        rows.append(
            (
                model_id,
                size,
                1 / median,
                median * 1000,
                prepare * 1000,
                worst,
                live.stages is not None,
            )
        )
    load_after = os.getloadavg()[0]
    lines = [
        f"### live occlusion: {args.updates} square positions along a drag, one torch thread; "
        f"load average {load_before:.2f} before, {load_after:.2f} after",
        "",
        "| model | square | updates/s | median ms | first update (clean maps) ms "
        "| max |Δ| vs full forward | local path |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {m} | {s}×{s} | **{rate:.0f}** | {ms:.1f} | {prep:.0f} | {worst:.1e} | "
        f"{'yes' if local else 'no'} |"
        for m, s, rate, ms, prep, worst, local in rows
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
