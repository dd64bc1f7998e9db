"""``convlens check-model``: load a spec the way the server does and check everything it offers.

For each layer: captured, and a fresh capture equals a stop-early recompute bit for bit; the unit
arithmetic of its centre unit, redone from the layer's real input, equals the layer's value.
Then which panels apply to the model, and why the others don't. A spec that cannot load gives
one-line reasons naming the file and key.
"""

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.core.attribution.gradcam import default_cam_layer
from app.core.attribution.local_forward import chain_of
from app.core.capture import ActivationCapture, capture_layers
from app.core.model_spec import SpecError, read_specs
from app.core.registry import LayerInfo, LoadedModel, ModelLoadError, load_model
from app.core.unit_math import UnitError, explain_unit

TOLERANCE = 1e-4


@dataclass
class LayerCheck:
    layer: LayerInfo
    recompute_exact: bool
    unit_difference: float | None
    unit_problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.recompute_exact and (
            self.unit_difference is None or self.unit_difference <= TOLERANCE
        )


@dataclass
class ModelCheck:
    """Everything ``check-model`` found about one spec."""

    source: Path
    model: LoadedModel | None = None
    problems: list[str] = field(default_factory=list)
    layers: list[LayerCheck] = field(default_factory=list)
    panels: dict[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        return self.model is not None and not self.problems


def _spatial(layer: LayerInfo) -> bool:
    return len(layer.output_shape) == 3 and layer.output_shape[1] * layer.output_shape[2] > 1


def panels_of(model: LoadedModel) -> dict[str, str | None]:
    """Each panel → None when it applies, else the reason it does not."""
    spatial = [layer for layer in model.layers if _spatial(layer)]
    convs = [layer for layer in model.layers if layer.type == "Conv2d"]
    chain = chain_of(model.module, model.input_shape)
    no_maps = "no layer has spatial feature maps"
    return {
        "layers and channels": None,
        "unit arithmetic": None,
        "receptive fields": None
        if any(l.receptive_field.rf for l in model.layers)
        else "no layer's receptive field could be traced",
        "filters": None if convs else "the model has no nn.Conv2d module",
        "Grad-CAM": None if default_cam_layer(model) else no_maps,
        "saliency / SmoothGrad": None,
        "occlusion": None,
        "occlusion fast local path": None
        if chain
        else "the forward is not a plain chain of child modules: occlusion runs full forwards",
        "effective receptive field": None if spatial else no_maps,
        "feature visualization": None if spatial else no_maps,
        "random-init twin": None,
        "top-activating patches": None
        if model.spec.top_patches
        else "none shipped (display.top_patches)",
        "draw canvas": None if model.spec.input_kind == "digit" else 'input.kind is not "digit"',
    }


def _centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 3:
        return (shape[0] // 2, shape[1] // 2, shape[2] // 2)
    return (shape[0] // 2,)


def check_layers(model: LoadedModel, batch: torch.Tensor) -> list[LayerCheck]:
    capture = ActivationCapture(model.program)
    with torch.inference_mode():
        capture.run(batch)
    checks = []
    for layer in model.layers:
        fresh = capture.activations.get(layer.name)
        again = capture_layers(model.program, batch, [layer.name]).get(layer.name)
        exact = fresh is not None and again is not None and torch.equal(fresh, again)
        difference, problem = None, None
        if len(layer.output_shape) in (1, 3) and math.prod(layer.output_shape):
            try:
                unit = explain_unit(model.program, batch, layer.name, _centre(layer.output_shape))
                difference = unit.difference
            except UnitError as error:
                problem = str(error)
        checks.append(LayerCheck(layer, exact, difference, problem))
    return checks


def check_model(path: Path, device: torch.device) -> list[ModelCheck]:
    """Load every spec under ``path`` and check it; never raises for a bad spec."""
    try:
        specs = read_specs([path])
    except SpecError as error:
        return [ModelCheck(path, problems=[str(error)])]
    results = []
    for spec in specs:
        started = time.perf_counter()
        result = ModelCheck(spec.source)
        try:
            result.model = load_model(spec, device)
        except ModelLoadError as error:
            result.problems.append(str(error))
            results.append(result)
            continue
        model = result.model
        generator = torch.Generator().manual_seed(0)
        batch = model.batch(torch.randn((1, *model.input_shape), generator=generator))
        result.layers = check_layers(model, batch)
        for check in result.layers:
            if not check.ok:
                why = check.unit_problem or (
                    "a recompute differs from the fresh capture"
                    if not check.recompute_exact
                    else f"unit arithmetic is off by {check.unit_difference:.3g}"
                )
                result.problems.append(f"{spec.source}: layer {check.layer.name}: {why}")
        result.panels = panels_of(model)
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results


def format_report(result: ModelCheck) -> str:
    """The human-readable report ``convlens check-model`` prints."""
    if result.model is None:
        return "\n".join(result.problems)
    model = result.model
    program = model.program
    lines = [
        f"{model.spec.id}: {model.spec.name}  ({result.source})",
        f"  entry point {model.spec.entry_point}, {model.total_params:,} parameters, "
        f"{model.num_classes} classes, input {model.spec.input_kind} "
        f"{'×'.join(map(str, model.input_shape))}",
        f"  weights sha256 {model.weights_sha256}"
        + ("" if model.spec.sha256 else "  (not in the spec: add it to pin these weights)"),
        "  capture: "
        + (
            "torch.fx trace (functional ops and in-place ops exact)"
            if program.method == "fx"
            else f"module hooks, every value copied (fx could not trace: {program.note})"
        ),
        "",
        f"  {'layer':40} {'kind':15} {'output':16} {'RF size':>9} {'jump':>5}  check",
    ]
    for check in result.layers:
        layer = check.layer
        rf = layer.receptive_field.rf
        size = "global" if rf and rf.is_global else (f"{rf.size[0]}×{rf.size[1]}" if rf else "—")
        jump = f"{rf.jump[0]}" if rf and not rf.is_global else ""
        shape = "×".join(map(str, layer.output_shape)) + (" (NHWC)" if layer.channels_last else "")
        status = "ok" if check.ok else "FAILED"
        if check.unit_difference is not None:
            status += f" (unit Δ {check.unit_difference:.1e})"
        lines.append(f"  {layer.name:40} {layer.kind:15} {shape:16} {size:>9} {jump:>5}  {status}")
        if rf is None and layer.receptive_field.diagnostic:
            lines.append(f"      receptive field: {layer.receptive_field.diagnostic}")
    lines += ["", "  panels:"]
    for panel, reason in result.panels.items():
        lines.append(
            f"    {'✓' if reason is None else '·'} {panel}" + (f": {reason}" if reason else "")
        )
    lines.append("")
    lines.append(
        f"  checked in {result.seconds:.1f} s: "
        + ("usable" if result.usable else f"{len(result.problems)} problem(s)")
    )
    lines += [f"  {problem}" for problem in result.problems]
    return "\n".join(lines)
