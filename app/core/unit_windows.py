"""The windowed steps of a unit's arithmetic: a convolution's window × filter through the layer's
own padding, a linear unit's row, a pool's window (module or functional, adaptive or windowed).

Each returns the numbers ``unit_math.UnitMath`` reports (inputs, weights, products, positions,
padding cells, the recomputed value) for one unit, from the layer's real input.
"""

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional


def conv_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) the conv pads by itself ("same" included)."""
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return (0, 0, 0, 0)
        pads = conv._reversed_padding_repeated_twice  # "same": torch's own split
        return tuple(int(p) for p in pads)  # type: ignore[return-value]
    top, left = conv.padding
    return (left, left, top, top)


def _window(
    source: Tensor,
    pads: tuple[int, int, int, int],
    mode: str,
    rows: range,
    cols: range,
    channels: range,
) -> tuple[Tensor, list[tuple[int, int, int]], list[bool]]:
    """Input cells of a window (after padding ``source`` as the layer does), with positions."""
    left, right, top, bottom = pads
    if mode == "zeros":
        padded = functional.pad(source, (left, right, top, bottom))
    else:
        padded = functional.pad(source, (left, right, top, bottom), mode=mode)
    window = padded[0][channels.start : channels.stop][:, list(rows)][:, :, list(cols)]
    height, width = source.shape[-2:]
    positions, outside = [], []
    for c in channels:
        for r in rows:
            for q in cols:
                positions.append((c, r - top, q - left))
                outside.append(not (0 <= r - top < height and 0 <= q - left < width))
    return window, positions, outside


def conv_window(conv: nn.Conv2d, source: Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    per_group_in = conv.in_channels // conv.groups
    group = c // (conv.out_channels // conv.groups)
    channels = range(group * per_group_in, (group + 1) * per_group_in)
    rows = range(y * sh, y * sh + dh * (kh - 1) + 1, dh)
    cols = range(x * sw, x * sw + dw * (kw - 1) + 1, dw)
    window, positions, outside = _window(
        source, conv_padding(conv), conv.padding_mode, rows, cols, channels
    )
    weights = conv.weight[c].detach()
    products = window.double() * weights.double()
    bias = None if conv.bias is None else float(conv.bias[c])
    total = float(products.sum()) + (bias or 0.0)
    return {
        "inputs": window.flatten().tolist(),
        "weights": weights.flatten().tolist(),
        "products": products.flatten().tolist(),
        "bias": bias,
        "shape": (len(channels), kh, kw),
        "positions": positions,
        "padded": outside,
        "padding_mode": conv.padding_mode,
        "recomputed": total,
    }


def linear_row(linear: nn.Linear, vector: Tensor, c: int) -> dict[str, Any]:
    weights = linear.weight[c].detach()
    products = vector.double() * weights.double()
    bias = None if linear.bias is None else float(linear.bias[c])
    return {
        "inputs": vector.tolist(),
        "weights": weights.tolist(),
        "products": products.tolist(),
        "bias": bias,
        "shape": (vector.numel(),),
        "recomputed": float(products.sum()) + (bias or 0.0),
    }


def _adaptive_range(index: int, size: int, out: int) -> range:
    return range(math.floor(index * size / out), math.ceil((index + 1) * size / out))


def pool_window(
    module: nn.Module | None, op: str, args: dict[str, Any], source: Tensor, c: int, y: int, x: int
) -> dict[str, Any]:
    """Max/avg pools (module or functional, adaptive or windowed) redone over the unit's window."""
    height, width = source.shape[-2:]
    adaptive = "adaptive" in op or isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d)
    is_max = "max" in op or isinstance(module, nn.MaxPool2d | nn.AdaptiveMaxPool2d)
    if op == "mean":
        rows, cols, pads = range(height), range(width), (0, 0, 0, 0)
    elif adaptive:
        size = args["output_size"]
        out_h, out_w = (size, size) if isinstance(size, int) else size
        out_h, out_w = out_h or height, out_w or width
        rows, cols = _adaptive_range(y, height, out_h), _adaptive_range(x, width, out_w)
        pads = (0, 0, 0, 0)
    else:
        kernel = args["kernel_size"]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        stride = args.get("stride") or kernel
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        padding = args.get("padding", 0)
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        dilation = args.get("dilation", 1)
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        rows = range(y * sh, y * sh + dh * (kh - 1) + 1, dh)
        cols = range(x * sw, x * sw + dw * (kw - 1) + 1, dw)
        pads = (pw, pw + kw * dw, ph, ph + kh * dh)  # room for ceil_mode's last window
    fill = -math.inf if is_max else 0.0
    padded = functional.pad(source, pads, value=fill)
    rows = range(rows.start, min(rows.stop, padded.shape[-2]), rows.step)
    cols = range(cols.start, min(cols.stop, padded.shape[-1]), cols.step)
    window = padded[0, c][list(rows)][:, list(cols)]
    left, top = pads[0], pads[2]
    inside = [
        (r - top, q - left)
        for r in rows
        for q in cols
        if 0 <= r - top < height and 0 <= q - left < width
    ]
    values = window.flatten().double()
    if is_max:
        result, rule = float(values.max()), "max"
    else:
        counted = len(values)
        if args.get("count_include_pad") is False or adaptive or op == "mean":
            counted = len(inside)
        if args.get("divisor_override"):
            counted = args["divisor_override"]
        finite = values[torch.isfinite(values)]
        result, rule = float(finite.sum()) / counted, f"average (÷ {counted})"
    return {
        "inputs": [v if math.isfinite(v) else None for v in values.tolist()],
        "shape": (len(rows), len(cols)),
        "positions": [(c, r - top, q - left) for r in rows for q in cols],
        "padded": [
            not (0 <= r - top < height and 0 <= q - left < width) for r in rows for q in cols
        ],
        "rule": rule,
        "recomputed": result,
    }


def pool_arguments(module: nn.Module) -> dict[str, Any]:
    names = (
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
        "output_size",
    )
    return {name: getattr(module, name) for name in names if hasattr(module, name)}
