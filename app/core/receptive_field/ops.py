"""Per-op rules: how one torch call changes the receptive field of the tensors it returns.

The tracer hands every intercepted call (``OpCall``) to ``derive_trace``, which looks the op up
by its canonical name and applies the matching rule. An op without a rule, or one whose effect no
single (size, jump, start) describes, gives a ``Trace`` with a diagnostic instead of a field.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor

from app.core.receptive_field.geometry import (
    ReceptiveField,
    as_pair,
    conv_receptive_field,
    covering_receptive_field,
    narrow_receptive_field,
    pad_receptive_field,
    pool_receptive_field,
    union_receptive_field,
)


@dataclass(frozen=True)
class Trace:
    """What a traced tensor knows about the image: a field, or why it has none.

    ``spatial_dims`` are the tensor axes holding (height, width); None once they were merged
    (flatten), when ``rf`` still tells what each flattened element's source position sees.
    """

    rf: ReceptiveField | None = None
    spatial_dims: tuple[int, int] | None = None
    diagnostic: str | None = None


class _UnsupportedError(Exception):
    """An op whose effect cannot be written as one (size, jump, start) for all units."""


@dataclass
class OpCall:
    """One intercepted torch call, with the traces of its image-dependent tensor inputs."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: list[tuple[Tensor, Trace]]
    outputs: list[Tensor]
    image_hw: tuple[int, int]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        return self.args[index] if index < len(self.args) else self.kwargs.get(name, default)

    def covering_trace(self) -> Trace:
        """Output units that read every unit of every input: they see what those saw together."""
        fields = [covering_receptive_field(trace.rf, self.image_hw) for _, trace in self.inputs]
        return Trace(union_receptive_field(*fields))

    def sole_input(self) -> tuple[Tensor, ReceptiveField, tuple[int, int] | None]:
        """The image-dependent first argument, when nothing else (a weight, say) depends on it."""
        if len(self.inputs) != 1 or self.inputs[0][0] is not self.args[0]:
            raise _UnsupportedError(f"{self.name} with an image-dependent parameter")
        tensor, trace = self.inputs[0]
        return tensor, trace.rf, trace.spatial_dims

    def grid_input(self) -> tuple[Tensor, ReceptiveField, tuple[int, int]]:
        """Input of a 2-D windowed op: a map whose last two axes are height and width."""
        tensor, rf, dims = self.sole_input()
        if dims != (tensor.dim() - 2, tensor.dim() - 1):
            raise _UnsupportedError(f"{self.name} over axes other than height and width")
        return tensor, rf, dims


def _conv(call: OpCall) -> Trace:
    _, rf, dims = call.grid_input()
    kernel = tuple(call.arg(1, "weight").shape[-2:])
    stride, padding, dilation = (
        call.arg(3, "stride", 1),
        call.arg(4, "padding", 0),
        call.arg(5, "dilation", 1),
    )
    if isinstance(padding, str):  # "same" puts the smaller half of dilation * (kernel - 1) first
        same = padding == "same"
        padding = tuple(
            same * d * (k - 1) // 2 for d, k in zip(as_pair(dilation), kernel, strict=True)
        )
    return Trace(conv_receptive_field(rf, kernel, stride, padding, dilation), dims)


def _pool(call: OpCall) -> Trace:
    _, rf, dims = call.grid_input()
    kernel = call.arg(1, "kernel_size")
    stride = call.arg(2, "stride") or kernel  # F.max_pool2d passes None or [] for "the kernel"
    dilation = call.arg(4, "dilation", 1) if "max" in call.name else 1
    return Trace(
        pool_receptive_field(rf, kernel, stride, call.arg(3, "padding", 0), dilation), dims
    )


def _adaptive_pool(call: OpCall) -> Trace:
    tensor, rf, dims = call.grid_input()
    in_hw, out_hw = tuple(tensor.shape[-2:]), tuple(call.outputs[0].shape[-2:])
    if out_hw == (1, 1):
        return call.covering_trace()
    if any(size % out for size, out in zip(in_hw, out_hw, strict=True)):
        raise _UnsupportedError(f"{call.name} from {in_hw} to {out_hw} has unequal windows")
    kernel = (in_hw[0] // out_hw[0], in_hw[1] // out_hw[1])
    return Trace(pool_receptive_field(rf, kernel), dims)


def _pad(call: OpCall) -> Trace:
    tensor, rf, dims = call.sole_input()
    if dims is None:
        raise _UnsupportedError("pad of a flattened tensor")
    if call.arg(2, "mode", "constant") == "circular":
        raise _UnsupportedError("circular padding wraps the image around")
    pads = list(call.arg(1, "pad"))
    before = [0, 0]
    for axis, dim in enumerate(dims):
        pair = tensor.dim() - 1 - dim  # F.pad lists (before, after) pairs from the last axis back
        if 2 * pair < len(pads):
            before[axis] = pads[2 * pair]
    return Trace(pad_receptive_field(rf, before[0], before[1]), dims)


def _elementwise(call: OpCall) -> Trace:
    """Unit (y, x) out depends on unit (y, x) of every input: activations, BN, add, mul, cat…

    A global operand is a gate broadcast over every unit (squeeze-excitation's ``x * scale``):
    the union rule keeps the other operands' box and marks it gated.
    """
    try:
        rf = union_receptive_field(*(trace.rf for _, trace in call.inputs))
    except ValueError as exc:
        raise _UnsupportedError(f"{call.name}: {exc}") from exc
    paths = [(tensor, trace) for tensor, trace in call.inputs if not trace.rf.is_global]
    if all(trace.spatial_dims is None for _, trace in paths):
        return Trace(rf)
    aligned: set[tuple[int, ...]] = set()
    for tensor, trace in paths:
        if trace.spatial_dims is None:
            raise _UnsupportedError(f"{call.name} of a flattened tensor and a spatial map")
        hw = [tensor.shape[d] for d in trace.spatial_dims]
        for output in call.outputs:  # broadcasting aligns axes from the right
            dims = tuple(d + output.dim() - tensor.dim() for d in trace.spatial_dims)
            if [output.shape[d] for d in dims] != hw:
                raise _UnsupportedError(f"{call.name} changes or broadcasts height/width")
            aligned.add(dims)
    if len(aligned) > 1:
        raise _UnsupportedError(f"{call.name} aligns the height/width axes differently")
    return Trace(rf, aligned.pop())


def _reduction(call: OpCall) -> Trace:
    """mean/sum/max/… over both height and width: every unit sees what the map's units saw."""
    if isinstance(call.arg(1, "other"), Tensor):  # torch.max(a, b) is elementwise
        return _elementwise(call)
    tensor, rf, dims = call.sole_input()
    dim = call.arg(1, "dim")
    if dims is None or dim is None or dim == ():
        return call.covering_trace()
    reduced = {d % tensor.dim() for d in (dim if isinstance(dim, tuple | list) else (dim,))}
    touched = reduced & set(dims)
    if touched == set(dims):
        return call.covering_trace()
    if touched:
        raise _UnsupportedError(f"{call.name} over only one of height/width")
    if call.outputs[0].dim() == tensor.dim():  # keepdim
        return Trace(rf, dims)
    dropped = [sum(r < d for r in reduced) for d in dims]
    return Trace(rf, (dims[0] - dropped[0], dims[1] - dropped[1]))


def _normalization(call: OpCall) -> Trace:
    """Statistics over height/width (instance, group, layer norm) gate every unit.

    Each unit is its own value shifted and scaled by the map's mean and deviation, which see
    everything the map saw: the unit keeps its box and is marked gated.
    """
    tensor, rf, dims = call.sole_input()
    if call.name == "layer_norm" and dims is not None:
        normalized = range(tensor.dim() - len(call.arg(1, "normalized_shape")), tensor.dim())
        if not set(normalized) & set(dims):  # channels-last LayerNorm (ConvNeXt) is per unit
            return Trace(rf, dims)
    return Trace(replace(rf, gated=True), dims)


def _linear(call: OpCall) -> Trace:
    """On flattened features every output sees what all their units saw; on channels, per unit."""
    if all(trace.spatial_dims is None for _, trace in call.inputs):
        return call.covering_trace()
    tensor, rf, dims = call.sole_input()
    if call.name == "linear" and tensor.dim() - 1 not in dims:
        return Trace(rf, dims)
    raise _UnsupportedError(f"{call.name} across height/width")


def _reshape(call: OpCall) -> Trace:
    """view/flatten/…: height and width survive when every axis from height on is kept as is."""
    tensor, rf, dims = call.sole_input()
    if dims is None:
        return Trace(rf)
    kept = tuple(tensor.shape[min(dims) :])
    output = call.outputs[0]
    if output.dim() >= len(kept) and tuple(output.shape[output.dim() - len(kept) :]) == kept:
        shift = output.dim() - tensor.dim()
        return Trace(rf, (dims[0] + shift, dims[1] + shift))
    return Trace(rf)


def _permute(call: OpCall) -> Trace:
    tensor, rf, dims = call.sole_input()
    if dims is None:
        return Trace(rf)
    order = list(range(tensor.dim()))
    if call.name == "permute":  # x.permute(0, 2, 3, 1) or x.permute((0, 2, 3, 1))
        order = [
            d % tensor.dim() for d in (call.args[1:] if len(call.args) > 2 else call.arg(1, "dims"))
        ]
    else:
        first, second = call.arg(1, "dim0") % tensor.dim(), call.arg(2, "dim1") % tensor.dim()
        order[first], order[second] = second, first
    return Trace(rf, (order.index(dims[0]), order.index(dims[1])))


def _getitem(call: OpCall) -> Trace:
    """Basic slicing; a slice ``a::s`` of height or width acts like a 1x1 conv, stride s, pad -a."""
    tensor, rf, dims = call.sole_input()
    index = call.args[1] if isinstance(call.args[1], tuple) else (call.args[1],)
    if not all(isinstance(item, slice | int) or item is Ellipsis for item in index):
        raise _UnsupportedError("advanced indexing")
    if dims is None:
        return Trace(rf)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (tensor.dim() - len(index) + 1) + index[at + 1 :]
    index += (slice(None),) * (tensor.dim() - len(index))
    starts, steps = [0, 0], [1, 1]
    for axis, dim in enumerate(dims):
        if not isinstance(index[dim], slice):
            raise _UnsupportedError("indexing a single row or column")
        starts[axis], _, steps[axis] = index[dim].indices(tensor.shape[dim])
    sliced = conv_receptive_field(rf, 1, (steps[0], steps[1]), (-starts[0], -starts[1]))
    dropped = [sum(isinstance(item, int) for item in index[:d]) for d in dims]
    return Trace(sliced, (dims[0] - dropped[0], dims[1] - dropped[1]))


_NAMES_BY_RULE: dict[Callable[[OpCall], Trace], str] = {
    _elementwise: """relu relu6 hardtanh sigmoid tanh silu gelu elu selu celu leaky_relu hardswish
        hardsigmoid mish softplus softsign prelu rrelu threshold logsigmoid dropout dropout1d
        dropout2d alpha_dropout feature_alpha_dropout batch_norm local_response_norm
        channel_shuffle native_channel_shuffle add sub mul div truediv floordiv true_divide neg abs
        exp log sqrt rsqrt pow square reciprocal clamp clip clamp_min clamp_max maximum minimum
        where sign erf addcmul addcdiv lerp cat concat concatenate chunk split tensor_split
        contiguous clone detach to type type_as float double half masked_fill expand expand_as
        repeat""",  # batch_norm as in eval mode: per channel, never across pixels
    _reduction: "mean sum amax amin max min std var logsumexp prod",
    _normalization: "group_norm instance_norm layer_norm",
    _linear: "linear matmul mm bmm addmm",
    _reshape: "view reshape view_as reshape_as flatten unflatten squeeze unsqueeze",
    _permute: "permute transpose swapaxes swapdims",
    _conv: "conv2d",
    _pool: "max_pool2d max_pool2d_with_indices avg_pool2d",
    _adaptive_pool: "adaptive_avg_pool2d adaptive_max_pool2d adaptive_max_pool2d_with_indices",
    _pad: "pad",
    _getitem: "getitem",
}
_RULES = {name: rule for rule, names in _NAMES_BY_RULE.items() for name in names.split()}
_VALUE_INDEPENDENT_NAMES = """zeros_like ones_like empty_like full_like rand_like randn_like
    randint_like new_zeros new_ones new_empty new_full new_tensor"""
VALUE_INDEPENDENT = frozenset(_VALUE_INDEPENDENT_NAMES.split())  # shape only, not values
_DUNDER_ARITHMETIC = frozenset(("add", "sub", "mul", "truediv", "floordiv", "pow", "matmul"))


def op_name(func: Callable[..., Any]) -> str:
    """Canonical name: ``__radd__``, ``__iadd__``, ``add_`` give ``add``; ``_max_pool2d`` too."""
    raw = getattr(func, "__name__", repr(func))
    name = raw.strip("_")
    if raw.startswith("__") and name[:1] in ("i", "r") and name[1:] in _DUNDER_ARITHMETIC:
        return name[1:]
    return name


def derive_trace(call: OpCall) -> Trace:
    """Output trace of one op: propagate diagnostics, ask the op's rule, narrow ``seen``.

    A global input makes any op but an elementwise one (where it is a gate) see what all its
    inputs' units saw together. After the rule, the output map's ``seen`` is cut to what its
    units reach, so a later global op or edge unit claims no pixel none of them sees.
    """
    for _, trace in call.inputs:
        if trace.diagnostic is not None:
            return trace
    rule = _RULES.get(call.name)
    if rule is not _elementwise and any(trace.rf.is_global for _, trace in call.inputs):
        return call.covering_trace()
    if rule is None:
        return Trace(diagnostic=f"unsupported op: {call.name}")
    try:
        trace = rule(call)
    except _UnsupportedError as exc:
        return Trace(diagnostic=f"unsupported op: {exc}")
    except Exception as exc:  # an unforeseen call signature must not break the analysis
        return Trace(diagnostic=f"could not interpret {call.name}: {exc}")
    if trace.rf is None or trace.spatial_dims is None:
        return trace
    shape, (height_dim, width_dim) = call.outputs[0].shape, trace.spatial_dims
    units_hw = (shape[height_dim], shape[width_dim])
    return Trace(narrow_receptive_field(trace.rf, units_hw, call.image_hw), trace.spatial_dims)
