"""The arithmetic behind one unit of any layer, redone from the layer's real input.

``explain_unit`` takes the exact tensors the layer received when it ran (captured at the
program's points), redoes the unit's value step by step the way the layer computes it — a
convolution through the module's own padding (zeros, reflect, replicate, circular, ``F.pad`` or
TF-SAME pads before it), any stride, dilation or groups; a pool over its window; an elementwise
step by applying the module (or function) itself to the unit's input — and reports every number
with the value the network produced, so a test (and a student) can check they agree.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from app.core.capture import capture_points
from app.core.layer_program import LayerProgram, ProgramLayer
from app.core.unit_windows import conv_window, linear_row, pool_arguments, pool_window

# Formulas of the common elementwise steps, keyed by module class or function name.
FORMULAS = {
    "relu": "max(0, x)",
    "relu6": "min(max(0, x), 6)",
    "hardtanh": "min(max(min_val, x), max_val)",
    "leaky_relu": "x if x ≥ 0 else negative_slope · x",
    "silu": "x · sigmoid(x)",
    "hardswish": "x · min(max(x + 3, 0), 6) / 6",
    "hardsigmoid": "min(max(x + 3, 0), 6) / 6",
    "gelu": "x · Φ(x)  (Φ: standard normal CDF)",
    "sigmoid": "1 / (1 + e^(−x))",
    "tanh": "(e^x − e^(−x)) / (e^x + e^(−x))",
    "elu": "x if x > 0 else alpha · (e^x − 1)",
    "softplus": "log(1 + e^(β·x)) / β",
    "mish": "x · tanh(softplus(x))",
    "selu": "scale · (x if x > 0 else alpha · (e^x − 1))",
    "celu": "x if x > 0 else alpha · (e^(x/alpha) − 1)",
    "prelu": "x if x ≥ 0 else a · x",
    "batchnorm": "(x − running_mean) / √(running_var + eps) · γ + β",
    "norm": "(x − μ) / √(σ² + eps) · γ + β  (μ, σ² over the normalized group)",
}
_PARAMETERS = (
    "negative_slope",
    "alpha",
    "beta",
    "threshold",
    "min_val",
    "max_val",
    "approximate",
    "eps",
    "lambd",
    "scale",
)


class UnitError(ValueError):
    """The unit does not exist or the layer cannot be redone by hand; the message says why."""


@dataclass
class UnitMath:
    """One unit's value redone by hand.

    ``kind`` picks which fields mean something: conv/linear use ``inputs``, ``weights``,
    ``products``, ``bias``; pool uses ``inputs`` (the window) and ``rule``; elementwise steps use
    ``inputs`` (one value) and ``formula`` + ``parameters``; add/mul/cat use ``operands``.
    ``positions`` gives, for windowed layers, each input cell's (channel, row, column) in the
    layer's input map, row/column outside the map marked as padding in ``padded``.
    """

    layer: str
    kind: str
    type: str
    unit: tuple[int, ...]
    value: float
    recomputed: float
    inputs: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    products: list[float] = field(default_factory=list)
    bias: float | None = None
    shape: tuple[int, ...] = ()
    positions: list[tuple[int, int, int]] = field(default_factory=list)
    padded: list[bool] = field(default_factory=list)
    padding_mode: str | None = None
    rule: str | None = None
    formula: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    operands: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    source: str | None = None

    @property
    def difference(self) -> float:
        return abs(self.value - self.recomputed)


def _norm(
    settings: dict[str, Any], layer: ProgramLayer, source: Tensor, raw: tuple[int, ...]
) -> dict[str, Any]:
    """LayerNorm / GroupNorm / InstanceNorm: the unit's group statistics from the real input.

    ``settings``: the module's attributes or the function's arguments (eps, weight, bias,
    normalized_shape or num_groups).
    """
    weight, bias = settings.get("weight"), settings.get("bias")
    if "normalized_shape" in settings:  # layer norm over the trailing axes
        trailing = len(tuple(settings["normalized_shape"]))
        group = source[raw[: source.dim() - trailing]]
        inner = raw[source.dim() - trailing :]
        affine = inner
    elif "num_groups" in settings:
        per_group = source.shape[1] // settings["num_groups"]
        g = raw[1] // per_group
        group = source[0, g * per_group : (g + 1) * per_group]
        inner = (raw[1] - g * per_group, *raw[2:])
        affine = (raw[1],)
    else:  # instance norm: one channel of one image
        group, inner, affine = source[0, raw[1]], tuple(raw[2:]), (raw[1],)
    values = group.double()
    mean, var = float(values.mean()), float(values.var(unbiased=False))
    eps = float(settings.get("eps", 1e-5))
    x = float(values[inner])
    gamma = float(weight[affine]) if isinstance(weight, Tensor) else 1.0
    beta = float(bias[affine]) if isinstance(bias, Tensor) else 0.0
    return {
        "inputs": [x],
        "formula": FORMULAS["norm"],
        "parameters": {
            "mean": mean,
            "var": var,
            "eps": eps,
            "gamma": gamma,
            "beta": beta,
            "group_size": values.numel(),
        },
        "recomputed": (x - mean) / math.sqrt(var + eps) * gamma + beta,
    }


def _norm_settings(
    module: nn.Module | None, program: LayerProgram, layer: ProgramLayer
) -> dict[str, Any]:
    if module is None:
        return program.call_arguments(layer)
    names = ("eps", "weight", "bias", "normalized_shape", "num_groups")
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


def _batchnorm(module: nn.Module, x: float, c: int) -> dict[str, Any]:
    mean, var = float(module.running_mean[c]), float(module.running_var[c])
    gamma = float(module.weight[c]) if module.weight is not None else 1.0
    beta = float(module.bias[c]) if module.bias is not None else 0.0
    result = (x - mean) / math.sqrt(var + module.eps) * gamma + beta
    return {
        "inputs": [x],
        "formula": FORMULAS["batchnorm"],
        "parameters": {
            "running_mean": mean,
            "running_var": var,
            "eps": module.eps,
            "gamma": gamma,
            "beta": beta,
        },
        "recomputed": result,
    }


def _operand_index(value: Tensor, raw: tuple[int, ...]) -> tuple[int, ...]:
    """``raw`` (an output index) as read from a broadcast operand (size-1 axes read index 0)."""
    offset = len(raw) - value.dim()
    return tuple(0 if value.shape[i] == 1 else raw[i + offset] for i in range(value.dim()))


def explain_unit(
    program: LayerProgram, batch: Tensor, layer_name: str, unit: tuple[int, ...]
) -> UnitMath:
    """Redo unit ``unit`` — (channel, y, x) of a map, or (i,) of a vector — of one layer.

    Raises:
        UnitError: no such unit, or the layer's inputs were not all captured.
    """
    layer = program.by_name.get(layer_name)
    if layer is None:
        raise UnitError(f"no layer {layer_name!r}")
    wanted = {layer.point, *(p for p in layer.operands if p is not None)}
    if layer.input_point is not None:
        wanted.add(layer.input_point)
    values = capture_points(program, batch, wanted)
    if layer.point not in values:
        raise UnitError(f"layer {layer_name!r} did not run for this input")
    output = values[layer.point]
    channels_last = layer.point in program.channels_last
    raw = (0, unit[1], unit[2], unit[0]) if channels_last and len(unit) == 3 else (0, *unit)
    if len(raw) != output.dim() or any(
        not 0 <= i < n for i, n in zip(raw, output.shape, strict=True)
    ):
        shown = tuple(output.shape[1:])
        if channels_last:
            shown = (shown[2], shown[0], shown[1])
        raise UnitError(f"layer {layer_name!r} has units of shape {shown}, not {unit}")
    module = program.model.get_submodule(layer.module) if layer.module else None
    source = values.get(layer.input_point) if layer.input_point is not None else None
    if source is None and layer.operands and layer.operands[0] is not None:
        source = values.get(layer.operands[0])
    with torch.no_grad():  # reading parameters as numbers, never differentiating
        found = _breakdown(program, layer, module, values, source, raw, channels_last)
    reads = layer.source
    if reads is None and layer.input_point is not None:
        reads = _point_name(program, layer.input_point)
    elif reads is None and layer.operands and layer.operands[0] is not None:
        reads = _point_name(program, layer.operands[0])
    return UnitMath(
        layer=layer_name,
        kind=layer.kind,
        type=layer.type,
        unit=unit,
        value=float(output[raw]),
        source=reads,
        **found,
    )


def _breakdown(
    program: LayerProgram,
    layer: ProgramLayer,
    module: nn.Module | None,
    values: dict[int, Tensor],
    source: Tensor | None,
    raw: tuple[int, ...],
    channels_last: bool,
) -> dict[str, Any]:
    kind = layer.kind
    if kind == "block":
        same = [name for name in program.points[layer.point].layers if name != layer.name]
        return {
            "recomputed": float(values[layer.point][raw]),
            "note": f"the block's output is the output of its last step, {same[0]}"
            if same
            else "the block's output",
        }
    if isinstance(module, nn.Conv2d) and source is not None:
        found = conv_window(module, source, raw[1], raw[2], raw[3])
        top, left, bottom, right = layer.padding  # zeros a pad module or F.pad added before
        if any(layer.padding):
            height = source.shape[-2] - top - bottom
            width = source.shape[-1] - left - right
            found["positions"] = [(c, r - top, q - left) for c, r, q in found["positions"]]
            found["padded"] = [
                not (0 <= r < height and 0 <= q < width) for _c, r, q in found["positions"]
            ]
        return found
    if isinstance(module, nn.Linear) and source is not None:
        vector = source[raw[:-1]] if source.dim() > 2 else source[0]
        return linear_row(module, vector, raw[-1])
    if kind == "batchnorm" and isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return _batchnorm(module, float(source[raw]), raw[1])
    if kind == "pool" and source is not None and source.dim() == 4 and not channels_last:
        args = pool_arguments(module) if module is not None else program.call_arguments(layer)
        y, x = (raw[2], raw[3]) if len(raw) == 4 else (0, 0)  # x.mean((2, 3)) gives (N, C)
        return pool_window(module, layer.type, args, source, raw[1], y, x)
    if kind == "norm" and source is not None:
        return _norm(_norm_settings(module, program, layer), layer, source, raw)
    if kind in ("add", "mul"):
        operands = [values[p] for p in layer.operands if p is not None]
        picked = [float(value[_operand_index(value, raw)]) for value in operands]
        result = sum(picked) if kind == "add" else math.prod(picked)
        described = [
            {
                "layer": _point_name(program, p),
                "value": v,
                "broadcast": values[p].dim() == 4 and values[p].shape[-2:] == (1, 1),
            }
            for p, v in zip((p for p in layer.operands if p is not None), picked, strict=True)
        ]
        note = None
        if kind == "mul" and any(d["broadcast"] for d in described):
            note = "gating: one operand holds one number per channel, computed from the whole map"
        return {"operands": described, "recomputed": result, "note": note}
    if kind == "cat":
        dim = program.call_arguments(layer).get("dim", 0) % len(raw)
        offset = 0
        for p in layer.operands:
            if p is None:
                continue
            size = values[p].shape[dim]
            if raw[dim] < offset + size:
                inner = list(raw)
                inner[dim] -= offset
                return {
                    "operands": [
                        {
                            "layer": _point_name(program, p),
                            "value": float(values[p][tuple(inner)]),
                            "channel": inner[dim],
                        }
                    ],
                    "recomputed": float(values[p][tuple(inner)]),
                }
            offset += size
    if kind == "flatten" and source is not None:
        position = tuple(
            int(i) for i in torch.unravel_index(torch.tensor(raw[1]), source.shape[1:])
        )
        return {
            "inputs": [float(source[(0, *position)])],
            "positions": [position],
            "recomputed": float(source[(0, *position)]),
        }
    if kind == "activation" and source is not None:
        # A module's class name lower-cased is the function's name, but for LeakyReLU.
        key = "leaky_relu" if layer.type == "LeakyReLU" else layer.type.lower()
        result = float(program.reapply(layer, values)[raw])
        parameters = {}
        if module is not None:
            parameters = {
                name: getattr(module, name)
                for name in _PARAMETERS
                if isinstance(getattr(module, name, None), int | float | str)
            }
        else:
            parameters = {
                k: v
                for k, v in program.call_arguments(layer).items()
                if isinstance(v, int | float | str) and k != "inplace"
            }
        return {
            "inputs": [float(source[raw])],
            "formula": FORMULAS.get(key),
            "parameters": parameters,
            "recomputed": result,
        }
    try:
        return {
            "recomputed": float(program.reapply(layer, values)[raw]),
            "note": "applied the layer's own operation to its captured input",
        }
    except (KeyError, RuntimeError, TypeError) as error:
        raise UnitError(f"layer {layer.name!r} cannot be redone by hand: {error}") from error


def _point_name(program: LayerProgram, point: int) -> str | None:
    """The visible layer whose output a point holds (an input point: the layer it reads)."""
    names = program.points[point].layers or program.points[point].reads
    return names[-1] if names else None
