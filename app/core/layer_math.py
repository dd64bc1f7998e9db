"""A real layer seen three more ways the seed tutorials teach: im2col, folded batch norm, and
depthwise-separable pairs — with the network's own numbers.

- ``im2col_unit``: a convolution as one matrix product. The layer's real input, padded the way the
  layer pads it, is unfolded into a matrix whose rows are output positions and whose columns are
  the k·k·C_in/groups numbers one filter reads; times the filter matrix (one column per output
  channel) it gives every output. A grouped or depthwise layer is one such product per group.
- ``fold_batchnorm``: a conv followed by batch norm is one conv with effective weights
  w·γ/√(σ²+ε) and bias β + (b−μ)·γ/√(σ²+ε); the unit comes out the same both ways.
- ``separable_pairs``: each depthwise conv and the pointwise (1×1) conv after it, with parameters
  and multiply-adds beside one full convolution of the same input and output shape.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from app.core.capture import capture_points
from app.core.layer_program import LayerProgram
from app.core.unit_math import UnitError
from app.core.unit_windows import conv_padding

PREVIEW_ROWS = 8


@dataclass
class Im2colUnit:
    """One unit of a conv layer as one row × one column of the layer's matrix product."""

    layer: str
    channel: int
    y: int
    x: int
    groups: int
    group: int
    rows: int  # output positions: H_out · W_out
    columns: int  # numbers one filter reads: k_h · k_w · C_in / groups
    filters_in_group: int  # C_out / groups: columns of the filter matrix
    row_index: int  # y · W_out + x
    row: list[float]  # the unfolded input row (this unit's window, flattened c, i, j)
    column: list[float]  # the filter's weights, flattened the same way
    dot: float
    bias: float | None
    value: float  # what the network computed
    preview_start: int
    preview: list[list[float]]  # rows preview_start… of the unfolded matrix (a few)


def _conv_module(program: LayerProgram, layer: str) -> tuple[nn.Conv2d, int]:
    entry = program.by_name.get(layer)
    if entry is None:
        raise UnitError(f"no layer {layer!r}")
    module = program.model.get_submodule(entry.module) if entry.module else None
    if not isinstance(module, nn.Conv2d) or entry.input_point is None:
        raise UnitError(f"layer {layer!r} is not an nn.Conv2d: it has no filter matrix")
    return module, entry.input_point


def im2col_unit(
    program: LayerProgram, batch: Tensor, layer: str, channel: int, y: int, x: int
) -> Im2colUnit:
    """Unit (channel, y, x) of a conv layer as the product of the unfolded input and filters.

    Raises:
        UnitError: not a conv layer, or no such unit.
    """
    conv, input_point = _conv_module(program, layer)
    entry = program.by_name[layer]
    values = capture_points(program, batch, [input_point, entry.point])
    source, output = values[input_point], values[entry.point]
    out_channels, out_h, out_w = output.shape[1:]
    if not (0 <= channel < out_channels and 0 <= y < out_h and 0 <= x < out_w):
        raise UnitError(f"layer {layer!r} has units of shape {(out_channels, out_h, out_w)}")
    left, right, top, bottom = conv_padding(conv)
    mode = conv.padding_mode
    padded = (
        functional.pad(source, (left, right, top, bottom))
        if mode == "zeros"
        else functional.pad(source, (left, right, top, bottom), mode=mode)
    )
    per_group_in = conv.in_channels // conv.groups
    per_group_out = conv.out_channels // conv.groups
    group = channel // per_group_out
    inputs = padded[:, group * per_group_in : (group + 1) * per_group_in]
    with torch.no_grad():
        unfolded = functional.unfold(
            inputs, conv.kernel_size, dilation=conv.dilation, stride=conv.stride
        )[0].T  # (rows, columns)
        weights = conv.weight[channel].reshape(-1)
        row_index = y * out_w + x
        row = unfolded[row_index]
        dot = float((row.double() * weights.double()).sum())
        bias = None if conv.bias is None else float(conv.bias[channel])
        start = max(0, min(row_index - PREVIEW_ROWS // 2, unfolded.shape[0] - PREVIEW_ROWS))
        preview = unfolded[start : start + PREVIEW_ROWS]
    return Im2colUnit(
        layer=layer,
        channel=channel,
        y=y,
        x=x,
        groups=conv.groups,
        group=group,
        rows=unfolded.shape[0],
        columns=unfolded.shape[1],
        filters_in_group=per_group_out,
        row_index=row_index,
        row=row.tolist(),
        column=weights.tolist(),
        dot=dot,
        bias=bias,
        value=float(output[0, channel, y, x]),
        preview_start=start,
        preview=preview.tolist(),
    )


@dataclass
class FoldedUnit:
    """A conv + batch norm pair as one conv: effective filter and bias, the unit both ways."""

    conv: str
    batchnorm: str
    channel: int
    raw_weights: list[float]
    folded_weights: list[float]
    raw_bias: float
    folded_bias: float
    scale: float  # γ / √(σ² + ε)
    unfolded_value: float  # BN(conv(x)) as the network computed it
    folded_value: float  # folded conv applied to the same window


def batchnorm_after(program: LayerProgram, conv: str) -> str | None:
    """The batch norm that reads ``conv``'s output directly (the foldable pair), if any."""
    for layer in program.layers:
        if layer.kind == "batchnorm" and layer.source == conv and layer.padding == (0, 0, 0, 0):
            return layer.name
    return None


def fold_batchnorm(
    program: LayerProgram, batch: Tensor, conv_name: str, channel: int, y: int, x: int
) -> FoldedUnit:
    """The conv's filter folded with the batch norm after it, checked on unit (channel, y, x).

    Raises:
        UnitError: not a conv, no batch norm right after it, or no such unit.
    """
    conv, _ = _conv_module(program, conv_name)
    norm_name = batchnorm_after(program, conv_name)
    if norm_name is None:
        raise UnitError(f"no batch norm reads layer {conv_name!r} directly: nothing to fold")
    norm = program.model.get_submodule(program.by_name[norm_name].module)
    unit = im2col_unit(program, batch, conv_name, channel, y, x)
    values = capture_points(program, batch, [program.by_name[norm_name].point])
    with torch.no_grad():
        scale = norm.weight[channel] / torch.sqrt(norm.running_var[channel] + norm.eps)
        raw_bias = float(conv.bias[channel]) if conv.bias is not None else 0.0
        folded_w = conv.weight[channel].reshape(-1).double() * float(scale)
        folded_b = float(norm.bias[channel]) + (
            raw_bias - float(norm.running_mean[channel])
        ) * float(scale)
        folded_value = float((torch.tensor(unit.row).double() * folded_w).sum()) + folded_b
    return FoldedUnit(
        conv=conv_name,
        batchnorm=norm_name,
        channel=channel,
        raw_weights=unit.column,
        folded_weights=folded_w.tolist(),
        raw_bias=raw_bias,
        folded_bias=folded_b,
        scale=float(scale),
        unfolded_value=float(values[program.by_name[norm_name].point][0, channel, y, x]),
        folded_value=folded_value,
    )


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise conv and the pointwise conv after it, against one full convolution."""

    depthwise: str
    pointwise: str
    between: tuple[str, ...]  # layers in between (batch norm, activation)
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    output_hw: tuple[int, int]
    params: int  # weights + biases of both convs
    full_params: int  # one k×k conv, in → out channels, with bias if either had one
    macs: int  # multiply-adds of both convs for one image
    full_macs: int


def _conv_params(conv: nn.Conv2d) -> int:
    return sum(p.numel() for p in conv.parameters())


def separable_pairs(
    program: LayerProgram, shapes: dict[str, tuple[int, ...]]
) -> list[SeparablePair]:
    """Every depthwise conv followed (through elementwise layers only) by a 1×1 conv."""
    layers = program.layers
    modules = dict(program.model.named_modules())
    pairs = []
    for index, layer in enumerate(layers):
        if layer.kind != "depthwise_conv" or layer.module is None:
            continue
        depthwise: nn.Conv2d = modules[layer.module]
        between: list[str] = []
        current = layer.name
        for after in layers[index + 1 :]:
            if after.source != current:
                continue
            module = modules.get(after.module) if after.module else None
            if (
                isinstance(module, nn.Conv2d)
                and module.kernel_size == (1, 1)
                and module.groups == 1
            ):
                out_c, out_h, out_w = shapes[after.name]
                _, dw_h, dw_w = shapes[layer.name]
                kh, kw = depthwise.kernel_size
                full_params = depthwise.in_channels * out_c * kh * kw + (
                    out_c if depthwise.bias is not None or module.bias is not None else 0
                )
                pairs.append(
                    SeparablePair(
                        depthwise=layer.name,
                        pointwise=after.name,
                        between=tuple(between),
                        in_channels=depthwise.in_channels,
                        out_channels=out_c,
                        kernel=(kh, kw),
                        output_hw=(out_h, out_w),
                        params=_conv_params(depthwise) + _conv_params(module),
                        full_params=full_params,
                        macs=depthwise.in_channels * kh * kw * dw_h * dw_w
                        + module.in_channels * out_c * out_h * out_w,
                        full_macs=depthwise.in_channels * out_c * kh * kw * dw_h * dw_w,
                    )
                )
                break
            if after.kind in ("batchnorm", "activation", "norm"):
                between.append(after.name)
                current = after.name
                continue
            break
    return pairs
