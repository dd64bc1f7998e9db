"""Benchmark: what does seeing every layer cost over a bare forward?

Measured side by side in one run, interleaved round by round so machine noise hits every variant
alike:
  bare      torch.inference_mode() forward of the preprocessed photo
  capture   the same forward with every visible layer captured + per-layer statistics
            (core.analyze)
  http      POST /analyze to a real uvicorn server on loopback, caches off (a fresh forward
            each time, including upload, decode, resize and JSON encoding)
  captum    Captum's LayerActivation called once per layer (the usual way to get every layer)
Also: the bytes of every layer's atlas PNGs vs the same maps as JSON floats.

Run: `.venv/bin/python bench/analyze.py [--rounds 15] [--write docs/benchmarks.md]`.
Captum is installed only for this benchmark: `.venv/bin/pip install captum`.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import torch

from app.config import REPO_ROOT, Settings
from app.core.analysis import analyze
from app.core.encode import feature_map_atlas
from app.core.preprocess import decode_image, to_model_input
from app.core.registry import ModelRegistry
from app.launch import running_server

PHOTO = "chelsea.png"


def photo_bytes() -> bytes:
    import skimage

    return (Path(skimage.__file__).parent / "data" / PHOTO).read_bytes()


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def captum_all_layers(model, inputs: torch.Tensor):
    from captum.attr import LayerActivation

    modules = dict(model.module.named_modules())
    return [
        LayerActivation(model.module, modules[layer.name]).attribute(inputs)
        for layer in model.layers
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--captum-rounds",
        type=int,
        default=3,
        help="Captum runs one forward per layer: sample fewer",
    )
    parser.add_argument(
        "--write", type=Path, default=None, help="append the results to this markdown file"
    )
    args = parser.parse_args()

    # Same intra-op threads as the server's default, so every variant runs on equal footing.
    torch.set_num_threads(Settings().torch_threads or torch.get_num_threads())
    registry = ModelRegistry.from_specs(REPO_ROOT / "models", torch.device("cpu"))
    model = registry.get(args.model)
    data = photo_bytes()
    inputs = to_model_input(decode_image(data, 10**9), model.spec.preprocess)
    batch = inputs.unsqueeze(0)
    try:
        import captum  # noqa: F401

        has_captum = True
    except ImportError:
        has_captum = False

    def bare() -> None:
        with torch.inference_mode():
            model.module(batch)

    def captum_run() -> None:
        with torch.no_grad():
            captum_all_layers(model, batch)

    env = {"CONVLENS_ANALYSIS_CACHE_BYTES": "0", "CONVLENS_ACTIVATION_CACHE_BYTES": "0"}
    samples: dict[str, list[float]] = {"bare": [], "capture": [], "http": []}
    if has_captum:
        samples["captum"] = []
    with running_server(env=env) as base, httpx.Client(base_url=base, timeout=120) as http:
        url = f"/api/v1/models/{args.model}/analyze"

        def post() -> None:
            response = http.post(url, content=data, headers={"content-type": "image/png"})
            response.raise_for_status()

        for _ in range(3):  # warm-up
            bare(), analyze(model, inputs), post()
        for round_index in range(args.rounds):
            samples["bare"].append(timed(bare))
            samples["capture"].append(timed(analyze, model, inputs))
            samples["http"].append(timed(post))
            if has_captum and round_index < args.captum_rounds:
                samples["captum"].append(timed(captum_run))

    result = analyze(model, inputs)
    png_bytes = sum(len(feature_map_atlas(t.numpy()).png) for t in result.activations.values())
    json_bytes = sum(len(json.dumps(t.tolist())) for t in result.activations.values())
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}

    lines = [
        f"### analyze: {args.model}, {PHOTO}, {args.rounds} interleaved rounds "
        f"(Captum in the first {args.captum_rounds}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| measurement | median ms | ratio to bare forward |",
        "|---|---:|---:|",
    ]
    for name, value in median.items():
        lines.append(f"| {name} | {value:.1f} | {value / median['bare']:.2f}× |")
    lines += [
        "",
        f"- HTTP analyze ÷ bare forward: **{median['http'] / median['bare']:.2f}×** (goal ≤ 1.5×)",
        f"- capture ÷ bare forward: **{median['capture'] / median['bare']:.2f}×**",
    ]
    if has_captum:
        lines.append(
            f"- Captum LayerActivation layer by layer ÷ our one-pass capture: "
            f"**{median['captum'] / median['capture']:.1f}×** ({len(model.layers)} layers)"
        )
    lines.append(
        f"- every layer's maps: atlas PNGs {png_bytes / 1e6:.1f} MB "
        f"vs JSON floats {json_bytes / 1e6:.1f} MB "
        f"(**{json_bytes / png_bytes:.1f}×** smaller as PNG)"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
