"""Receptive fields of every zoo model, proven two independent ways.

(a) A reference recurrence: an fx ``Interpreter`` over a plain ``symbolic_trace`` that carries, for
every value, the first and last input row (and column) of every unit, computed from the windows
each op really reads (taps past the input read padding, not pixels). It shares nothing with the
tracer: no (size, jump, start), no meta tensors. Branches meet by the union rule, a global value
mixed into a map (squeeze-excitation) is a gate, and a norm over the image gates every unit.
(b) Autograd on a positive copy of the model: all conv/linear weights positive, norms positive,
max pools as average pools, so the input gradient of a unit is non-zero exactly on what it sees:
its box, plus, when gated, what the gate saw (from the reference).
The data-dependent model cannot be traced by fx nor forwarded on meta tensors past its branch:
its layers before the branch are checked (a reference over its traceable stem), the others must
say the forward stopped.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.overrides import TorchFunctionMode

from app.core.layer_program import LayerProgram
from app.core.receptive_field import (
    Box,
    ReceptiveField,
    clip_box,
    global_receptive_field,
    receptive_field_box,
)
from app.core.registry import LayerInfo, describe_layers
from tests.core.test_receptive_field_tracer import box_mask
from tests.zoo import ZOO

Interval = tuple[int, int] | None
"""First and last input row (or column) a unit sees; None: it reads only padding."""


@dataclass(frozen=True)
class Extent:
    """What the reference knows about one value.

    ``dims``: tensor axes of height and width, with one interval per unit in ``rows`` and
    ``cols``. None once they were reduced or merged: ``rows`` and ``cols`` then hold one interval,
    the box all elements see together, and ``pooled`` says whether every element sees all of it.
    ``gate``: the box seen by gates and norm statistics mixed into every unit, if any.
    """

    dims: tuple[int, int] | None
    rows: tuple[Interval, ...]
    cols: tuple[Interval, ...]
    pooled: bool = False
    gate: tuple[Interval, Interval] | None = None

    def box(self) -> tuple[Interval, Interval]:
        return span(self.rows), span(self.cols)


class Unknown(Exception):
    """An op no box describes (circular padding): the tracer must give a diagnostic."""


UNKNOWN = "unknown"


def span(intervals: Any) -> Interval:
    real = [interval for interval in intervals if interval is not None]
    return (min(lo for lo, _ in real), max(hi for _, hi in real)) if real else None


def merged_gate(*gates: tuple[Interval, Interval] | None) -> tuple[Interval, Interval] | None:
    real = [gate for gate in gates if gate is not None]
    return (span(g[0] for g in real), span(g[1] for g in real)) if real else None


def merged(extents: list[Extent], pooled: bool, gate: Any = None) -> Extent:
    """One box for all elements: what ``extents`` saw together."""
    rows, cols = span(e.box()[0] for e in extents), span(e.box()[1] for e in extents)
    return Extent(None, (rows,), (cols,), pooled, merged_gate(gate, *(e.gate for e in extents)))


def gated(extent: Extent) -> Extent:
    """Statistics over what ``extent`` saw reach every unit (a value already pooled sees them)."""
    return extent if extent.pooled else replace(extent, gate=merged_gate(extent.gate, extent.box()))


def source_index(index: int, length: int, mode: str) -> int | None:
    """The input unit a (possibly padded) position reads."""
    if 0 <= index < length:
        return index
    if mode == "reflect":
        return -index if index < 0 else 2 * (length - 1) - index
    if mode == "replicate":
        return min(max(index, 0), length - 1)
    if mode == "circular":
        raise Unknown("circular padding")
    return None  # zeros


def padded(intervals: tuple[Interval, ...], before: int, after: int, mode: str) -> tuple:
    length = len(intervals)
    sources = [source_index(i - before, length, mode) for i in range(length + before + after)]
    return tuple(None if s is None else intervals[s] for s in sources)


def pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window_extent(
    extent: Extent,
    out: Tensor,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any = 1,
    mode: str = "zeros",
) -> Extent:
    """Unit v reads padded input units v * stride + dilation * i; those past the end, nothing."""
    assert extent.dims == (out.dim() - 2, out.dim() - 1), "windows over the last two axes"
    kernel, stride, padding, dilation = map(pair, (kernel, stride or kernel, padding, dilation))
    axes = []
    for axis, intervals in enumerate((extent.rows, extent.cols)):
        wide = padded(intervals, padding[axis], padding[axis], mode)
        taps = [
            [v * stride[axis] + dilation[axis] * i for i in range(kernel[axis])]
            for v in range(out.shape[-2 + axis])
        ]
        axes.append(tuple(span(wide[t] for t in window if t < len(wide)) for window in taps))
    return replace(extent, rows=axes[0], cols=axes[1])


def adaptive_extent(extent: Extent, out: Tensor) -> Extent:
    """Window i of m over n units is floor(i n / m)..ceil((i + 1) n / m) - 1.

    To a single unit it is a global pool, as torchvision's ``AdaptiveAvgPool2d(1)`` is meant.
    """
    if out.shape[-2:] == (1, 1):
        return merged([extent], pooled=True)
    axes = []
    for axis, intervals in enumerate((extent.rows, extent.cols)):
        n, m = len(intervals), out.shape[-2 + axis]
        axes.append(tuple(span(intervals[i * n // m : -((i + 1) * n // -m)]) for i in range(m)))
    return replace(extent, rows=axes[0], cols=axes[1])


def union_extent(operands: list[Extent], out: Tensor, ndims: list[int]) -> Extent:
    """Elementwise ops and concatenation: unit (y, x) of every operand; global operands gate."""
    paths = [(e, n) for e, n in zip(operands, ndims, strict=True) if not e.pooled]
    if not paths:
        return merged(operands, pooled=True)
    gate = merged_gate(*(e.gate for e in operands), *(e.box() for e in operands if e.pooled))
    if all(e.dims is None for e, _ in paths):
        return merged([e for e, _ in paths], pooled=False, gate=gate)
    aligned = {tuple(d + out.dim() - n for d in e.dims or ()) for e, n in paths}
    assert len(aligned) == 1, "one spatial layout"
    rows = tuple(span(rs) for rs in zip(*(e.rows for e, _ in paths), strict=True))
    cols = tuple(span(cs) for cs in zip(*(e.cols for e, _ in paths), strict=True))
    return Extent(aligned.pop(), rows, cols, False, gate)  # type: ignore[arg-type]


def reshaped(extent: Extent, before: Tensor, after: Tensor) -> Extent:
    """view/reshape/flatten: height and width stay the last two axes, or merge into one."""
    last_two = extent.dims == (before.dim() - 2, before.dim() - 1)
    if last_two and after.shape[-2:] == before.shape[-2:]:
        return replace(extent, dims=(after.dim() - 2, after.dim() - 1))
    return extent if extent.dims is None else merged([extent], pooled=False)


def layer_norm_extent(source: Extent, out: Tensor, normalized_dims: int) -> Extent:
    """Statistics over the last ``normalized_dims`` axes: a gate when they include height/width."""
    normalized = set(range(out.dim() - normalized_dims, out.dim()))
    return gated(source) if source.dims is None or normalized & set(source.dims) else source


def arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    return node.args[index] if index < len(node.args) else node.kwargs.get(name, default)


_POINTWISE_NAMES = """BatchNorm2d Dropout Identity ReLU ReLU6 Hardswish Hardsigmoid GELU SiLU
    Sigmoid Tanh ELU LeakyReLU relu gelu sigmoid hardsigmoid hardswish silu tanh dropout
    contiguous"""
POINTWISE = frozenset(_POINTWISE_NAMES.split())
"""Modules and functions that map unit (y, x) to unit (y, x) (batch norm as in eval mode)."""
_ELEMENTWISE_NAMES = "add iadd mul imul sub truediv cat"
ELEMENTWISE = frozenset(_ELEMENTWISE_NAMES.split())


class ReferenceFields(fx.Interpreter):
    """Runs a traced model and records every node's ``Extent`` (None: not image-dependent)."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.extents: dict[str, Any] = {}

    def run_node(self, node: fx.Node) -> Any:
        result = super().run_node(node)
        sources = [n for n in node.all_input_nodes if self.extents.get(n.name) is not None]
        if node.op == "placeholder":
            _, _, height, width = result.shape
            units = tuple((i, i) for i in range(height)), tuple((i, i) for i in range(width))
            self.extents[node.name] = Extent((2, 3), *units)
        elif not sources or node.op == "output":
            self.extents[node.name] = None
        elif any(self.extents[n.name] == UNKNOWN for n in sources):
            self.extents[node.name] = UNKNOWN
        else:
            try:
                self.extents[node.name] = self.rule(node, result)
            except Unknown:
                self.extents[node.name] = UNKNOWN
        return result

    def extent(self, node: Any) -> Any:
        return self.extents.get(node.name) if isinstance(node, fx.Node) else None

    def rule(self, node: fx.Node, out: Any) -> Any:
        first = node.args[0]
        source = self.extent(first)
        extents = [self.extents[n.name] for n in node.all_input_nodes if self.extent(n) is not None]
        if all(isinstance(e, Extent) and e.pooled for e in extents):  # what they saw, together
            return merged(extents, pooled=True)
        if node.op == "call_module":
            module = self.module.get_submodule(str(node.target))
            if type(module).__name__ in POINTWISE:
                return source
            return self.module_rule(module, source, out)
        name = getattr(node.target, "__name__", str(node.target)).strip("_").removesuffix("_")
        if name in POINTWISE:
            return source
        if name in ELEMENTWISE:
            tensors = [t for t in (first if name == "cat" else node.args) if self.extent(t)]
            ndims = [self.env[t].dim() for t in tensors]
            return union_extent([self.extent(t) for t in tensors], out, ndims)
        if name in ("max_pool2d", "avg_pool2d"):
            dilation = arg(node, 4, "dilation", 1) if name == "max_pool2d" else 1
            window = arg(node, 1, "kernel_size"), arg(node, 2, "stride"), arg(node, 3, "padding", 0)
            return window_extent(source, out, *window, dilation)
        if name == "adaptive_avg_pool2d":
            return adaptive_extent(source, out)
        if name == "pad":
            pads, mode = list(arg(node, 1, "pad")), arg(node, 2, "mode", "constant")
            before = self.env[first]
            assert source.dims == (before.dim() - 2, before.dim() - 1) and len(pads) == 4
            rows = padded(source.rows, pads[2], pads[3], mode)
            return replace(source, rows=rows, cols=padded(source.cols, pads[0], pads[1], mode))
        if name == "layer_norm":
            return layer_norm_extent(source, out, len(arg(node, 1, "normalized_shape")))
        if name in ("view", "reshape", "flatten"):
            return reshaped(source, self.env[first], out)
        if name in ("permute", "transpose"):
            order = list(range(out.dim()))
            if name == "permute":
                order = list(node.args[1:])
            else:
                order[node.args[1]], order[node.args[2]] = node.args[2], node.args[1]
            order = [d % out.dim() for d in order]
            dims = source.dims and (order.index(source.dims[0]), order.index(source.dims[1]))
            return replace(source, dims=dims)
        if name == "mean":
            reduced = {d % self.env[first].dim() for d in arg(node, 1, "dim")}
            assert source.dims is not None and set(source.dims) <= reduced, "a global pool"
            return merged([source], pooled=True)
        if name == "chunk":
            return tuple(source for _ in out)
        if name == "getitem" and isinstance(source, tuple):
            return source[node.args[1]]
        if name in ("size", "getattr"):
            return None
        raise AssertionError(f"the reference has no rule for {name}")

    @staticmethod
    def module_rule(module: nn.Module, source: Extent, out: Tensor) -> Extent:
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            window = module.kernel_size, module.stride, module.padding
            dilation = getattr(module, "dilation", 1)  # AvgPool2d has none
            mode = getattr(module, "padding_mode", "zeros")
            return window_extent(source, out, *window, dilation, mode)
        if isinstance(module, nn.AdaptiveAvgPool2d):
            return adaptive_extent(source, out)
        if isinstance(module, nn.GroupNorm):
            return gated(source)
        if isinstance(module, nn.LayerNorm):
            return layer_norm_extent(source, out, len(module.normalized_shape))
        if isinstance(module, nn.Linear):
            if source.dims is None:
                return merged([source], pooled=True)
            assert out.dim() - 1 not in source.dims, "a linear layer over channels"
            return source
        raise AssertionError(f"the reference has no rule for {type(module).__name__}")


def reference_extents(module: nn.Module, image: Tensor) -> dict[str, Any]:
    interpreter = ReferenceFields(fx.symbolic_trace(module))
    with torch.no_grad():
        interpreter.run(image)
    return interpreter.extents


class MaxAsAverage(TorchFunctionMode):
    """Max pools as average pools of the same windows: the gradient reaches every pixel read."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        name = getattr(func, "__name__", "").strip("_")
        if name == "max_pool2d":
            return average_of_max(*args, **(kwargs or {}))
        if name == "adaptive_max_pool2d":
            return F.adaptive_avg_pool2d(args[0], args[1])
        return func(*args, **(kwargs or {}))


def average_of_max(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    assert pair(dilation) == (1, 1) and not return_indices
    return F.avg_pool2d(input, kernel_size, stride or None, padding, ceil_mode)


def positive_model(model_id: str) -> nn.Module:
    """The zoo model with every path from a pixel to a unit carrying a positive product.

    Conv and linear weights are random positive and sum to 1/2 per output (values stay small,
    so no hardsigmoid or hardswish saturates), biases 0.01; batch norms are positive scalings.
    Weights are random, not the tracer tests' constants: with equal weights, the channel sum of
    a LayerNorm's output is constant and its gradient exactly zero. Layer and group norms get
    random positive weights, so their statistics cancel only by accident, never exactly.
    """
    model = ZOO[model_id].build().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                weight = torch.rand(module.weight.shape, generator=generator)
                weight += 0.1
                fan_in = tuple(range(1, weight.dim()))
                module.weight.copy_(weight / weight.sum(fan_in, keepdim=True) / 2)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
            if isinstance(module, nn.BatchNorm2d | nn.LayerNorm | nn.GroupNorm):
                module.weight.uniform_(0.5, 1.5, generator=generator)
            if isinstance(getattr(module, "bias", None), nn.Parameter):
                module.bias.fill_(0.01)
    return model


REFERENCE_PART = {"zoo-untraceable": "stem"}
"""Models fx cannot trace: the traceable part holding every layer the meta forward reached."""


@dataclass(frozen=True)
class Analysed:
    program: LayerProgram
    layers: list[LayerInfo]
    references: dict[str, Any]  # by layer name: its value's Extent (None: the reference skips it)


@functools.cache
def analysed(model_id: str) -> Analysed:
    """The positive model's program, layer table and reference, shared by the tests below."""
    entry = ZOO[model_id]
    model = positive_model(model_id)
    program = LayerProgram.build(model)
    layers = describe_layers(program, entry.input_shape)
    model.double()  # after describe_layers, which probes shapes in float32; the program shares it
    image = torch.rand((1, *entry.input_shape), dtype=torch.float64)
    part = REFERENCE_PART.get(model_id)
    if part is None:
        extents = reference_extents(model, image)
        references = {
            layer.name: extents[program.points[program.by_name[layer.name].point].node]
            for layer in layers
        }
    else:
        prefix = f"{part}."
        traced = fx.symbolic_trace(model.get_submodule(part))
        extents = reference_extents(traced, image)
        nodes = {str(n.target): n.name for n in traced.graph.nodes if n.op == "call_module"}
        references = {
            layer.name: extents[nodes[layer.module.removeprefix(prefix)]]
            for layer in layers
            if layer.module is not None and layer.module.startswith(prefix)
        }
    return Analysed(program, layers, references)


def clipped(rf: ReceptiveField, y: int, x: int, image_hw: tuple[int, int]) -> Box:
    return clip_box(receptive_field_box(rf, y, x, image_hw), *image_hw)


def interval_box(rows: Interval, cols: Interval) -> Box:
    assert rows is not None and cols is not None
    return Box(rows[0], cols[0], rows[1], cols[1])


@pytest.mark.parametrize("model_id", sorted(ZOO))
def test_fields_equal_the_reference_recurrence(model_id: str) -> None:
    result = analysed(model_id)
    image_hw = ZOO[model_id].input_shape[1:]
    checked = 0
    for layer in result.layers:
        field, reference = layer.receptive_field, result.references.get(layer.name)
        if reference is None:
            assert field.rf is None and "stopped" in (field.diagnostic or ""), layer.name
            continue
        if reference == UNKNOWN:
            assert field.rf is None and "circular" in (field.diagnostic or ""), layer.name
            continue
        rf = field.rf
        assert rf is not None, (layer.name, field.diagnostic)
        assert (rf.is_global, rf.gated) == (reference.pooled, reference.gate is not None), (
            layer.name
        )
        if reference.dims is None:
            if reference.pooled:  # the region every unit of the map before it saw together
                assert clipped(rf, 0, 0, image_hw) == interval_box(*reference.box()), layer.name
            continue  # a flattened map: its elements were checked as units
        _, height, width = layer.output_shape
        assert (len(reference.rows), len(reference.cols)) == (height, width), layer.name
        rows = [
            (box.top, box.bottom) for box in (clipped(rf, y, 0, image_hw) for y in range(height))
        ]
        cols = [
            (box.left, box.right) for box in (clipped(rf, 0, x, image_hw) for x in range(width))
        ]
        assert (rows, cols) == (list(reference.rows), list(reference.cols)), layer.name
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("model_id", sorted(ZOO))
def test_boxes_equal_positive_weight_gradients(model_id: str) -> None:
    """Two opposite corner units and the centre one of every map (the axes are independent, so
    the corners cover all four edges), and every global layer."""
    result = analysed(model_id)
    image_hw = ZOO[model_id].input_shape[1:]
    units_of: dict[str, list[tuple[int, int]]] = {}
    for layer in result.layers:
        reference = result.references.get(layer.name)
        if layer.receptive_field.rf is None or reference is None or reference == UNKNOWN:
            continue
        if len(layer.output_shape) == 3:
            _, h, w = layer.output_shape
            units_of[layer.name] = sorted({(0, 0), (h - 1, w - 1), (h // 2, w // 2)})
        elif layer.receptive_field.rf.is_global:
            units_of[layer.name] = [(0, 0)]
    generator = torch.Generator().manual_seed(0)
    image = (
        torch.rand((1, *ZOO[model_id].input_shape), generator=generator, dtype=torch.float64) + 0.5
    )
    batch = image.repeat(3, 1, 1, 1).requires_grad_(True)  # one image per unit
    values: dict[int, Tensor] = {}

    def keep(point: int, value: Tensor) -> None:
        values.setdefault(point, value.clone())  # before any later in-place op changes it

    with MaxAsAverage():
        result.program.run(batch, keep)
    for layer in result.layers:
        if layer.name not in units_of:
            continue
        point = result.program.by_name[layer.name].point
        value = values[point]
        if point in result.program.channels_last:
            value = value.permute(0, 3, 1, 2)
        units = units_of[layer.name]
        if value.dim() == 4:
            total = sum(value[i, :, y, x].sum() for i, (y, x) in enumerate(units))
        else:
            total = value[0].sum()
        (grad,) = torch.autograd.grad(total, batch, retain_graph=True)
        gate = result.references[layer.name].gate
        for i, (y, x) in enumerate(units):
            reached = (grad[i].abs().sum(0) != 0).numpy()
            expected = box_mask(layer.receptive_field.rf, y, x, *image_hw)
            if gate is not None:
                (top, bottom), (left, right) = gate
                expected[top : bottom + 1, left : right + 1] = True
            np.testing.assert_array_equal(reached, expected, f"{layer.name!r} unit ({y}, {x})")


def test_squeezenet_global_pool_sees_rows_0_to_48() -> None:
    """The unpadded stride-2 stem's 24 windows on 50 rows start at 0, 2, …, 46: row 49 is unseen."""
    fields = {layer.name: layer.receptive_field.rf for layer in analysed("zoo-squeezenet").layers}
    seen = Box(0, 0, 48, 48)
    pool = fields["classifier.3"]
    assert pool == ReceptiveField((49, 49), (0, 0), (24.0, 24.0), True, False, seen)
    assert receptive_field_box(pool, 0, 0, (50, 50)) == seen
    # The first ceil-mode pool's last window, stem units 22..24, hangs past unit 23: rows 44..48.
    assert receptive_field_box(fields["features.2"], 11, 11, (50, 50)) == Box(44, 44, 48, 48)


def test_mobilenetv3_keeps_a_local_box_after_squeeze_excitation() -> None:
    fields = {layer.name: layer.receptive_field.rf for layer in analysed("zoo-mobilenetv3").layers}
    # Stem 3x3 s2 p1: size 3, jump 2, centre 0. Depthwise 3x3 s2 p1 at jump 2: 3 + 2*2 = 7, jump 4.
    local = ReceptiveField((7, 7), (4, 4), (0.0, 0.0))
    assert fields["features.1.block.0.2"] == local
    assert fields["features.1.block.1.hardsigmoid"] == global_receptive_field(32, 32)
    for name in ("features.1.block.1.mul", "features.1.block.2.0", "features.1"):
        assert fields[name] == replace(local, gated=True), name
    assert fields["features.2.block.1.0"].size == (15, 15)  # still growing after the gate
    assert fields["avgpool"] == replace(global_receptive_field(32, 32), gated=True)
