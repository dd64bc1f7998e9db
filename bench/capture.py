"""Benchmark: what does an exact record of every layer cost, and how do other ways compare?

Measured side by side in one run, one torch thread, medians of interleaved rounds after warm-up:
  bare       ``torch.inference_mode()`` forward
  capture    convlens: ``ActivationCapture`` over the model's layer program, every layer kept
             (copies only the values a later in-place op would overwrite)
  hooks      the naive exact way: a forward hook on every module that clones its output
             (sees no functional op: ``F.relu``, ``torch.cat``, ``x + y`` are missing)
  analyze    ``app.core.analysis.analyze``: capture + per-layer statistics + top-5, what the
             server does per image
  torchlens  TorchLens ``trace`` with its defaults: every op logged, every output saved
on EfficientNet-Lite0 (224², the bundled weights, a photo) and on the zoo model with the most
multiply-adds (``tests/zoo``, measured here). TorchLens wraps torch's functions and leaves them
wrapped, which slows every later forward: each round runs the other variants with torch
unwrapped, then wraps it (untimed) for a bare forward and a TorchLens trace. Also:
``convlens check-model`` on that zoo model, as a subprocess, wall time.

Run: ``.venv/bin/python bench/capture.py [--rounds 21] [--write docs/benchmarks.md]``.
TorchLens is installed only for this benchmark, never as a dependency of convlens:
``.venv/bin/pip install torchlens`` (measured with 2.36.1); without it, its rows are skipped.
"""

import argparse
import datetime
import importlib.metadata
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.config import REPO_ROOT
from app.core.analysis import analyze
from app.core.capture import ActivationCapture
from app.core.model_spec import read_spec
from app.core.preprocess import decode_image, to_model_input
from app.core.registry import LoadedModel, load_model

SECTION = "## Exact capture (issue: any PyTorch CNN)"
PHOTO = "chelsea.png"
CHECK_MODEL_RUNS = 3
WRAPPED = "bare, TorchLens wrappers in place"


@dataclass
class Subject:
    """One model under test with its preprocessed input."""

    label: str
    model: LoadedModel
    inputs: torch.Tensor
    samples: dict[str, list[float]] = field(default_factory=dict)
    kept: dict[str, tuple[int, int]] = field(default_factory=dict)  # variant → (tensors, bytes)

    @property
    def batch(self) -> torch.Tensor:
        return self.inputs.unsqueeze(0)


def multiply_adds(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of every Conv2d and Linear in one forward of a (1, *input_shape) batch."""
    total = 0

    def count(layer: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += (
                output.numel() * layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            )
        elif isinstance(layer, nn.Linear):
            total += output.numel() * layer.in_features

    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [layer.register_forward_hook(count) for layer in layers]
    try:
        with torch.inference_mode():
            module(torch.zeros((1, *input_shape)))
    finally:
        for handle in handles:
            handle.remove()
    return total


def largest_zoo_model(folder: Path) -> tuple[Subject, list[tuple[str, int]]]:
    """The zoo model with the most multiply-adds, loaded from a spec like a user's model."""
    sys.path.insert(0, str(REPO_ROOT))  # tests.zoo is not installed; its spec entry points need it
    from tests.zoo import ZOO
    from tests.zoo.specs import write_spec

    counts = sorted(
        (
            (model_id, multiply_adds(entry.build(), entry.input_shape))
            for model_id, entry in ZOO.items()
        ),
        key=lambda item: -item[1],
    )
    model_id = counts[0][0]
    model = load_model(read_spec(write_spec(model_id, folder)), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(model.input_shape, generator=generator)
    return Subject(f"{model_id} (3×{model.input_shape[1]}², seeded noise)", model, inputs), counts


def lite0() -> Subject:
    import skimage

    spec = read_spec(REPO_ROOT / "models" / "efficientnet-lite0.toml")
    model = load_model(spec, torch.device("cpu"))
    data = (Path(skimage.__file__).parent / "data" / PHOTO).read_bytes()
    inputs = to_model_input(decode_image(data, 10**9), spec.preprocess)
    return Subject(f"efficientnet-lite0 (224², {PHOTO})", model, inputs)


def clone_module_outputs(module: nn.Module, batch: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Forward hooks on every submodule, each cloning its output as the module returns it."""
    kept: list[tuple[str, torch.Tensor]] = []

    def keeper(name: str) -> Callable[..., None]:
        def keep(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor):
                kept.append((name, output.detach().clone()))

        return keep

    handles = [m.register_forward_hook(keeper(name)) for name, m in module.named_modules() if name]
    try:
        with torch.inference_mode():
            module(batch)
    finally:
        for handle in handles:
            handle.remove()
    return kept


def capture_every_layer(model: LoadedModel, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    capture = ActivationCapture(model.program)
    with torch.inference_mode():
        capture.run(batch)
    return capture.activations


def bare_forward(model: LoadedModel, batch: torch.Tensor) -> None:
    with torch.inference_mode():
        model.module(batch)


def variants(subject: Subject) -> dict[str, Callable[[], object]]:
    model, batch = subject.model, subject.batch
    return {
        "bare": lambda: bare_forward(model, batch),
        "capture": lambda: capture_every_layer(model, batch),
        "hooks": lambda: clone_module_outputs(model.module, batch),
        "analyze": lambda: analyze(model, subject.inputs),
    }


class TorchLens:
    """TorchLens, and switching its wrappers of torch's functions on and off between variants."""

    def __init__(self) -> None:
        import torchlens
        from torchlens.backends.torch.wrappers import unwrap_torch, wrap_torch

        self.trace = torchlens.trace
        self.wrap, self.unwrap = wrap_torch, unwrap_torch
        self.version = importlib.metadata.version("torchlens")


def torchlens_or_none() -> TorchLens | None:
    try:
        return TorchLens()
    except ImportError as error:
        print(
            f"TorchLens rows skipped ({error}); install it for the benchmark only: "
            ".venv/bin/pip install torchlens",
            file=sys.stderr,
        )
        return None


def timed(subject: Subject, name: str, run: Callable[[], object]) -> None:
    started = time.perf_counter()
    run()
    subject.samples.setdefault(name, []).append(time.perf_counter() - started)


def interleaved(
    subject: Subject, lens: TorchLens | None, rounds: int, lens_rounds: int, warmup: int
) -> None:
    """Each round runs every variant once (starting one further along each round); TorchLens
    and a bare forward beside it run with torch wrapped, in ``lens_rounds`` rounds spread out."""
    runs = variants(subject)
    names = list(runs)
    wrapped = {}
    if lens is not None:
        model, batch = subject.model, subject.batch
        wrapped = {
            WRAPPED: lambda: bare_forward(model, batch),
            "torchlens": lambda: lens.trace(model.module, batch),
        }
    for _ in range(warmup):
        for run in runs.values():
            run()
        if lens is not None:
            lens.wrap()
            for run in wrapped.values():
                run()
            lens.unwrap()
    every = max(1, rounds // max(1, lens_rounds))
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            timed(subject, name, runs[name])
        if lens is not None and index % every == 0 and index // every < lens_rounds:
            lens.wrap()
            for name in sorted(wrapped, reverse=index % 2 == 1):
                timed(subject, name, wrapped[name])
            lens.unwrap()


def tensors_kept(values: list[torch.Tensor]) -> tuple[int, int]:
    unique = {id(value): value for value in values}.values()
    return len(unique), sum(value.numel() * value.element_size() for value in unique)


def record_kept(subject: Subject) -> str:
    """Tensors and bytes each way keeps, and whether hooks and convlens saw the same values."""
    captured = capture_every_layer(subject.model, subject.batch)
    subject.kept["capture"] = tensors_kept(list(captured.values()))
    hooked = clone_module_outputs(subject.model.module, subject.batch)
    subject.kept["hooks"] = tensors_kept([value for _, value in hooked])
    first_call: dict[str, torch.Tensor] = {}
    for name, value in hooked:
        first_call.setdefault(name, value)
    common = [name for name in captured if name in first_call]
    differ = [name for name in common if not torch.equal(first_call[name], captured[name])]
    if differ:
        return f"**Differs** from the hooked clone at {len(differ)} module layers: {differ[:5]}."
    return (
        f"Same values: convlens's capture of each of the {len(common)} module layers equals "
        "a hook's clone bit for bit."
    )


def torchlens_kept(subject: Subject, lens: TorchLens) -> None:
    lens.wrap()
    trace = lens.trace(subject.model.module, subject.batch)
    lens.unwrap()
    saved = [op.out for op in trace.layer_list if op.has_saved_activation]
    subject.kept["torchlens"] = tensors_kept([t for t in saved if isinstance(t, torch.Tensor)])


@dataclass(frozen=True)
class CheckTiming:
    wall_seconds: float
    inside_seconds: float
    failure: str | None  # the output's last line when check-model did not exit 0


def time_check_model(spec: Path) -> CheckTiming:
    """``convlens check-model`` in fresh processes: median wall and self-reported seconds."""
    command = [str(Path(sys.executable).parent / "convlens"), "check-model", str(spec)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CONVLENS_TORCH_THREADS": "1"}
    walls, inside, failure = [], [], None
    for _ in range(CHECK_MODEL_RUNS):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines() or ["(no output)"]
            failure = f"exit code {done.returncode}: {output[-1]}"
        found = re.search(r"checked in ([\d.]+) s", done.stdout)
        inside.append(float(found.group(1)) if found else math.nan)
    return CheckTiming(statistics.median(walls), statistics.median(inside), failure)


def report(
    subjects: list[Subject],
    zoo_counts: list[tuple[str, int]],
    check: CheckTiming,
    meta: dict[str, Any],
) -> str:
    names = {
        "bare": "bare forward (`inference_mode`)",
        "capture": "convlens capture, every layer (`ActivationCapture`)",
        "hooks": "hooks on every module, each output cloned",
        "analyze": "convlens `analyze` (capture + statistics + top-5)",
        WRAPPED: "bare forward, torch wrapped by TorchLens",
        "torchlens": "TorchLens `trace`, every op saved",
    }
    lines = [f"### capture: {meta['title']}", "", meta["conditions"], ""]
    for subject in subjects:
        median = {
            name: statistics.median(values) * 1000 for name, values in subject.samples.items()
        }
        lines += [
            f"**{subject.label}** — {len(subject.model.layers)} layers, "
            f"{subject.model.program.method} capture; {meta['rounds'][subject.label]}",
            "",
            "| measurement | median ms | ÷ bare forward | tensors kept | MB kept |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, value in median.items():
            tensors, size = subject.kept.get(name, (None, None))
            kept = f"{tensors} | {size / 1e6:.1f}" if tensors is not None else "| "
            lines.append(
                f"| {names[name]} | {value:.2f} | {value / median['bare']:.2f}× | {kept} |"
            )
        lines += ["", meta["same"][subject.label]]
        if "torchlens" in median:
            lines.append(
                "TorchLens ÷ the bare forward beside it, both with torch wrapped by TorchLens: "
                f"{median['torchlens'] / median[WRAPPED]:.1f}×."
            )
        lines.append("")
    lines += [
        f"`convlens check-model` on {zoo_counts[0][0]} (fresh process, median of "
        f"{CHECK_MODEL_RUNS}): **{check.wall_seconds:.1f} s wall**, of which "
        f"{check.inside_seconds:.1f} s loading and checking (its own report); the rest is "
        "starting Python and importing torch"
        + (f". **Failed**: {check.failure}" if check.failure else "")
        + ".",
        "",
        "Zoo models by multiply-adds (Conv2d + Linear, one image): "
        + ", ".join(f"{model_id} {count / 1e6:.2f} M" for model_id, count in zoo_counts)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Add ``text`` at the end of the SECTION of ``path`` (the section is created if missing)."""
    document = path.read_text(encoding="utf-8")
    if SECTION not in document:
        document = document.rstrip("\n") + f"\n\n{SECTION}\n"
    start = document.index(SECTION)
    following = document.find("\n## ", start + len(SECTION))
    end = len(document) if following == -1 else following + 1
    section = document[start:end].rstrip("\n") + "\n\n" + text
    rest = document[end:]
    path.write_text(document[:start] + section + ("\n" + rest if rest else ""), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds on EfficientNet-Lite0")
    parser.add_argument("--zoo-rounds", type=int, default=41, help="rounds on the zoo model")
    parser.add_argument("--torchlens-rounds", type=int, default=7, help="TorchLens rounds (Lite0)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--write", type=Path, default=None, help="add the results to this markdown file"
    )
    args = parser.parse_args()

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    started = time.perf_counter()
    lens = torchlens_or_none()
    with tempfile.TemporaryDirectory() as folder:
        zoo, zoo_counts = largest_zoo_model(Path(folder))
        subjects = [lite0(), zoo]
        rounds = {subjects[0].label: args.rounds, zoo.label: args.zoo_rounds}
        lens_rounds = {
            subjects[0].label: args.torchlens_rounds,
            zoo.label: args.torchlens_rounds * 3,
        }
        same = {}
        for subject in subjects:
            same[subject.label] = record_kept(subject)
            if lens is not None:
                torchlens_kept(subject, lens)
            interleaved(
                subject, lens, rounds[subject.label], lens_rounds[subject.label], args.warmup
            )
        check = time_check_model(Path(folder) / f"{zoo_counts[0][0]}.toml")
    load_after = os.getloadavg()

    version = f"TorchLens {lens.version}" if lens is not None else "TorchLens not installed"
    meta = {
        "title": f"{datetime.date.today()}, torch {torch.__version__}, 1 thread, {version}",
        "conditions": (
            f"{platform.machine()}, {os.cpu_count()} CPUs; load average (1, 5, 15 min) "
            f"{', '.join(f'{v:.1f}' for v in load_before)} before and "
            f"{', '.join(f'{v:.1f}' for v in load_after)} after the run "
            f"({time.perf_counter() - started:.0f} s)."
        ),
        "rounds": {
            label: f"{rounds[label]} interleaved rounds"
            + (f" (TorchLens in {lens_rounds[label]} of them)" if lens is not None else "")
            + f", {args.warmup} warm-up"
            for label in rounds
        },
        "same": same,
    }
    text = report(subjects, zoo_counts, check, meta)
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
