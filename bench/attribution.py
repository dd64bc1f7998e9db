"""Benchmark: our Grad-CAM and occlusion against the usual libraries, side by side in one run.

Measured on EfficientNet-Lite0 with the same photo, layer, class, window and stride, interleaved
round by round so machine noise hits every variant alike:
  gradcam    ours (app.core.attribution.gradcam) vs torch-cam's GradCAM (forward with the input
             requiring grad + CAM), at the default layer and at an early block
  saliency   ours (app.core.attribution.saliency, vanilla gradient) vs Captum's Saliency
             (abs=True: the same max |gradient| over channels is then taken of both)
  occlusion  ours vs Captum's Occlusion with its default perturbations_per_eval=1 (one forward
             per window); also ours without local recomputation (every copy in full, batched)
             and Captum given the same batch size, to show where the time goes
The maps themselves are compared too (max |difference|), so the speed is for the same answer.

Run: `.venv/bin/python bench/attribution.py [--rounds 15] [--write docs/benchmarks.md]`.
The peers are installed only for this benchmark, without touching torch:
`.venv/bin/pip install --no-deps torchcam captum && .venv/bin/pip install matplotlib`.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from captum.attr import Occlusion
from captum.attr import Saliency as CaptumSaliency
from torchcam.methods import GradCAM

from app.config import REPO_ROOT, Settings
from app.core.attribution.gradcam import grad_cam
from app.core.attribution.occlusion import occlusion
from app.core.attribution.precompute import load_spec_model
from app.core.attribution.saliency import saliency
from app.core.preprocess import decode_image, to_model_input

PHOTO = "chelsea.png"
MODEL = "efficientnet-lite0"
LAYERS = ("_act_head", "_blocks.5")


def photo_bytes() -> bytes:
    import skimage

    return (Path(skimage.__file__).parent / "data" / PHOTO).read_bytes()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def torchcam_map(module: torch.nn.Module, inputs: torch.Tensor, layer: str, target: int):
    """torch-cam's documented use: hook the layer, forward, ask for the class's CAM."""
    with GradCAM(module, target_layer=layer) as extractor:
        scores = module(inputs.unsqueeze(0).requires_grad_(True))
        return extractor(target, scores)[0][0]


def captum_saliency(module: torch.nn.Module, inputs: torch.Tensor, target: int) -> torch.Tensor:
    """Captum's documented use; its (1, C, H, W) |gradient| reduced like ours (max over C)."""
    leaf = inputs.unsqueeze(0).requires_grad_(True)
    gradient = CaptumSaliency(module).attribute(leaf, target=target, abs=True)
    return gradient[0].amax(dim=0)


def captum_map(module, inputs, window: int, stride: int, fill: float, target: int, per_eval: int):
    return Occlusion(module).attribute(
        inputs.unsqueeze(0),
        sliding_window_shapes=(inputs.shape[0], window, window),
        strides=(inputs.shape[0], stride, stride),
        baselines=fill,
        target=target,
        perturbations_per_eval=per_eval,
    )[0, 0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15, help="Grad-CAM rounds")
    parser.add_argument("--occlusion-rounds", type=int, default=4)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="occlusion batch size")
    parser.add_argument(
        "--threads", type=int, default=Settings().torch_threads or torch.get_num_threads()
    )
    parser.add_argument("--write", type=Path, default=None, help="append results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_spec_model(REPO_ROOT / "models", MODEL, torch.device("cpu"))
    module = model.module
    inputs = to_model_input(decode_image(photo_bytes(), 10**9), model.spec.preprocess)
    with torch.inference_mode():
        target = int(module(inputs.unsqueeze(0)).argmax())
    pre = model.spec.preprocess
    fill = (0.5 - pre.mean[0]) / pre.std[0]  # grey; the three channels share mean and std
    fill_tensor = torch.full((3,), fill)
    fields = {name: model.layer_index[name].receptive_field.rf for name in LAYERS}

    variants: dict[str, Callable[[], object]] = {}
    for layer in LAYERS:
        variants[f"ours gradcam {layer}"] = lambda layer=layer: grad_cam(
            module, inputs, layer, target, fields[layer]
        )
        variants[f"torch-cam gradcam {layer}"] = lambda layer=layer: torchcam_map(
            module, inputs, layer, target
        )
    variants["ours saliency"] = lambda: saliency(module, inputs, target)
    variants["captum saliency"] = lambda: captum_saliency(module, inputs, target)
    occlusion_variants = {
        "ours occlusion": lambda: occlusion(
            module, inputs, (args.window,) * 2, (args.stride,) * 2, fill_tensor, target, args.batch
        ),
        "ours occlusion, full forwards": lambda: occlusion(
            module,
            inputs,
            (args.window,) * 2,
            (args.stride,) * 2,
            fill_tensor,
            target,
            args.batch,
            local=False,
        ),
        "captum occlusion": lambda: captum_map(
            module, inputs, args.window, args.stride, fill, target, 1
        ),
        f"captum occlusion, {args.batch} per eval": lambda: captum_map(
            module, inputs, args.window, args.stride, fill, target, args.batch
        ),
    }

    differences = {}
    for layer in LAYERS:
        ours = grad_cam(module, inputs, layer, target).cam
        ours = (ours - ours.min()) / (ours.max() - ours.min())
        differences[f"gradcam {layer}"] = float(
            (ours - torchcam_map(module, inputs, layer, target)).abs().max()
        )
    differences["saliency"] = float(
        (saliency(module, inputs, target).map - captum_saliency(module, inputs, target)).abs().max()
    )
    ours_occlusion = occlusion(
        module, inputs, (args.window,) * 2, (args.stride,) * 2, fill_tensor, target
    )
    with torch.no_grad():
        reference = captum_map(module, inputs, args.window, args.stride, fill, target, args.batch)
    differences["occlusion per-pixel map"] = float(
        (ours_occlusion.pixel_map - reference).abs().max()
    )

    samples: dict[str, list[float]] = {name: [] for name in [*variants, *occlusion_variants]}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in variants.items():
            samples[name].append(timed(fn))
    for _ in range(args.occlusion_rounds):
        for name, fn in occlusion_variants.items():
            with torch.no_grad():
                samples[name].append(timed(fn))
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}

    positions = len(ours_occlusion.rows) * len(ours_occlusion.cols)
    lines = [
        f"### attribution: {MODEL}, {PHOTO}, class {model.labels[target]!r}, torch "
        f"{torch.__version__}, {args.threads} thread(s); Grad-CAM and saliency {args.rounds} and "
        f"occlusion {args.occlusion_rounds} interleaved rounds",
        "",
        "| measurement | median ms |",
        "|---|---:|",
        *[f"| {name} | {value:.1f} |" for name, value in median.items()],
        "",
    ]
    for layer in LAYERS:
        ratio = median[f"ours gradcam {layer}"] / median[f"torch-cam gradcam {layer}"]
        lines.append(f"- Grad-CAM at `{layer}`, ours ÷ torch-cam: **{ratio:.2f}×** (goal ≤ 1.0×)")
    ratio = median["ours saliency"] / median["captum saliency"]
    lines.append(f"- saliency, ours ÷ Captum: **{ratio:.2f}×** (goal ≤ 1.0×)")
    occlusion_ratio = median["ours occlusion"] / median["captum occlusion"]
    batched_captum = median[f"captum occlusion, {args.batch} per eval"]
    lines += [
        f"- occlusion, window {args.window} stride {args.stride} ({positions} positions), ours "
        f"÷ Captum: **{occlusion_ratio:.2f}×** (goal ≤ 0.5×)",
        f"- ours ÷ Captum batching {args.batch} per eval: "
        f"{median['ours occlusion'] / batched_captum:.2f}×; ours without local recomputation "
        f"÷ Captum: {median['ours occlusion, full forwards'] / median['captum occlusion']:.2f}×",
        "- same answers: max |difference| "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
