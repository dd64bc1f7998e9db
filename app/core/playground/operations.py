"""The playground's operations: conv, max/avg pooling, ReLU and im2col, each explained.

Each result comes from ``torch.nn.functional`` itself (``conv2d``, ``max_pool2d``, ``avg_pool2d``,
``relu``); the steps beside it (window, products, sum, bias) are read from ``F.unfold``, the same
im2col a framework uses, so a student sees the arithmetic that produced each number. Everything
runs in float64 so the seeds' integer examples come out exact (6600, not 6599.9998).
"""

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from app.core.playground.geometry import (
    MAX_CHANNELS,
    MAX_KERNELS,
    MAX_SIDE,
    MAX_STEP_VALUES,
    MAX_STEPS,
    MAX_VALUE,
    AxisFit,
    Fit,
    Geometry,
    Padding,
    Pair,
    PlaygroundError,
    resolve_geometry,
)

PoolKind = Literal["max", "avg"]


def as_tensor(values: object, name: str, dims: int) -> Tensor:
    """A float64 tensor of ``dims`` dimensions from nested lists: rectangular, non-empty, and
    of numbers within ±``MAX_VALUE``."""
    try:
        tensor = torch.tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        message = f"{name} must be a rectangular array of numbers: {error}"
        raise PlaygroundError("invalid_input", message) from None
    if tensor.dim() != dims or tensor.numel() == 0:
        raise PlaygroundError("invalid_input", f"{name} must have {dims} non-empty dimensions")
    if not torch.isfinite(tensor).all():
        raise PlaygroundError("invalid_input", f"{name} holds a non-finite number")
    if tensor.abs().max() > MAX_VALUE:
        raise PlaygroundError("invalid_input", f"{name} holds a number beyond ±{MAX_VALUE:,.0f}")
    return tensor


def shape_of(inputs: Tensor) -> tuple[int, int, int]:
    channels, height, width = inputs.shape
    return channels, height, width


def _check_input(inputs: Tensor) -> None:
    channels, height, width = inputs.shape
    if channels > MAX_CHANNELS or height > MAX_SIDE or width > MAX_SIDE:
        raise PlaygroundError(
            "input_too_large",
            f"the input is {channels}×{height}×{width}; the playground takes at most "
            f"{MAX_CHANNELS} channels of {MAX_SIDE}×{MAX_SIDE}",
        )


def _check_fit(fits: tuple[AxisFit, AxisFit], fit: Fit) -> None:
    for axis in fits:
        if axis.span < 0 or (fit == "strict" and not axis.fits):
            raise PlaygroundError("does_not_fit", axis.explanation()["en"])


def _check_steps(steps: int, window: int) -> None:
    if steps > MAX_STEPS or steps * window > MAX_STEP_VALUES:
        raise PlaygroundError(
            "too_many_steps",
            f"{steps} steps of {window} values each; the playground explains at most "
            f"{MAX_STEPS} steps and {MAX_STEP_VALUES} values per request",
        )


@dataclass(frozen=True)
class Step:
    """One output value and the arithmetic behind it.

    ``origin`` is the window's top-left corner in the padded input. ``window`` holds the values
    the window covers: (C, kh, kw) for a convolution, (kh, kw) of its own channel for pooling
    (None where a max-pool window overlaps padding), [[x]] for ReLU. ``products``, ``total`` and
    ``bias`` explain a convolution, ``argmax`` a max pool, ``total``/``count`` an average pool.
    """

    channel: int
    y: int
    x: int
    origin: tuple[int, int]
    window: list
    value: float
    products: list | None = None
    total: float | None = None
    bias: float | None = None
    argmax: tuple[int, int] | None = None
    count: int | None = None


@dataclass(frozen=True)
class PlaygroundResult:
    """The torch result, the padded input the windows slide over, and every step."""

    operation: str
    input_shape: tuple[int, int, int]
    output: Tensor
    padded_input: Tensor
    geometry: Geometry | None
    fits: tuple[AxisFit, AxisFit] | None
    steps: list[Step]


def _padded(inputs: Tensor, geometry: Geometry, value: float) -> Tensor:
    pad_h, pad_w = geometry.padding
    return F.pad(inputs, (pad_w, pad_w, pad_h, pad_h), value=value)


def _windows(padded: Tensor, geometry: Geometry) -> Tensor:
    """(L, C, kh, kw): every window in row-major output order (the im2col columns)."""
    columns = F.unfold(padded[None], geometry.kernel, geometry.dilation, 0, geometry.stride)[0]
    return columns.T.reshape(-1, padded.shape[0], *geometry.kernel)


def _conv_output(
    inputs: Tensor, kernels: Tensor, bias: Tensor | None, geometry: Geometry, fit: Fit
) -> tuple[Tensor, tuple[AxisFit, AxisFit]]:
    """Validate one convolution request and run ``F.conv2d`` on it."""
    _check_input(inputs)
    channels, height, width = inputs.shape
    if kernels.dim() != 4 or kernels.shape[1] != channels or kernels.shape[0] > MAX_KERNELS:
        raise PlaygroundError(
            "invalid_kernels",
            f"kernels must be filters × {channels} × kh × kw (a filter is as deep as the input), "
            f"at most {MAX_KERNELS} filters; got {list(kernels.shape)}",
        )
    if bias is not None and tuple(bias.shape) != (kernels.shape[0],):
        raise PlaygroundError("invalid_kernels", "give exactly one bias per filter")
    fits = geometry.fits(height, width)
    _check_fit(fits, fit)
    output = F.conv2d(
        inputs[None], kernels, bias, geometry.stride, geometry.padding, geometry.dilation
    )[0]
    return output, fits


def convolve(
    inputs: Tensor,
    kernels: Tensor,
    bias: Tensor | None = None,
    *,
    stride: Pair = 1,
    padding: Padding = "valid",
    dilation: Pair = 1,
    fit: Fit = "strict",
) -> PlaygroundResult:
    """``F.conv2d`` of one (C, H, W) input with (O, C, kh, kw) kernels, explained step by step."""
    geometry = resolve_geometry(tuple(kernels.shape[-2:]), stride, padding, dilation)
    output, fits = _conv_output(inputs, kernels, bias, geometry, fit)
    _check_steps(output.numel(), inputs.shape[0] * math.prod(geometry.kernel))
    padded = _padded(inputs, geometry, 0.0)
    windows = _windows(padded, geometry)
    out_w = output.shape[2]
    steps = []
    for channel, weight in enumerate(kernels):
        products = windows * weight
        totals = products.sum(dim=(1, 2, 3))
        for index, window in enumerate(windows):
            y, x = divmod(index, out_w)
            steps.append(
                Step(
                    channel=channel,
                    y=y,
                    x=x,
                    origin=(y * geometry.stride[0], x * geometry.stride[1]),
                    window=window.tolist(),
                    value=output[channel, y, x].item(),
                    products=products[index].tolist(),
                    total=totals[index].item(),
                    bias=0.0 if bias is None else bias[channel].item(),
                )
            )
    return PlaygroundResult("conv", shape_of(inputs), output, padded, geometry, fits, steps)


def pool(
    inputs: Tensor,
    kind: PoolKind,
    kernel_size: Pair,
    *,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    fit: Fit = "strict",
) -> PlaygroundResult:
    """``F.max_pool2d``/``F.avg_pool2d`` explained window by window; stride defaults to the window.

    Average pooling counts zero padding in the mean, as torch does by default.
    """
    _check_input(inputs)
    geometry = resolve_geometry(
        kernel_size, kernel_size if stride is None else stride, padding, dilation
    )
    if kind == "avg" and geometry.dilation != (1, 1):
        raise PlaygroundError("invalid_parameter", "average pooling has no dilation in torch")
    if any(2 * p > k for p, k in zip(geometry.padding, geometry.kernel, strict=True)):
        raise PlaygroundError(
            "invalid_parameter", "pooling padding may be at most half the window (torch's rule)"
        )
    channels, height, width = inputs.shape
    fits = geometry.fits(height, width)
    _check_fit(fits, fit)
    _check_steps(channels * fits[0].output * fits[1].output, math.prod(geometry.kernel))
    batch, args = inputs[None], (geometry.kernel, geometry.stride, geometry.padding)
    if kind == "max":
        output = F.max_pool2d(batch, *args, geometry.dilation)[0]
    else:
        output = F.avg_pool2d(batch, *args)[0]
    windows = _windows(_padded(inputs, geometry, -math.inf if kind == "max" else 0.0), geometry)
    out_w = output.shape[2]
    steps = []
    for channel in range(channels):
        for index, window in enumerate(windows[:, channel]):
            y, x = divmod(index, out_w)
            values = window.tolist()
            steps.append(
                Step(
                    channel=channel,
                    y=y,
                    x=x,
                    origin=(y * geometry.stride[0], x * geometry.stride[1]),
                    window=[[v if math.isfinite(v) else None for v in row] for row in values],
                    value=output[channel, y, x].item(),
                    argmax=divmod(int(window.argmax()), window.shape[1]) if kind == "max" else None,
                    total=window.sum().item() if kind == "avg" else None,
                    count=window.numel() if kind == "avg" else None,
                )
            )
    padded = _padded(inputs, geometry, 0.0)
    return PlaygroundResult(f"{kind}_pool", shape_of(inputs), output, padded, geometry, fits, steps)


def relu(inputs: Tensor) -> PlaygroundResult:
    """``F.relu``: f(x) = max(0, x), one step per element."""
    _check_input(inputs)
    output = F.relu(inputs)
    channels, height, width = inputs.shape
    steps = [
        Step(c, y, x, (y, x), [[inputs[c, y, x].item()]], output[c, y, x].item())
        for c in range(channels)
        for y in range(height)
        for x in range(width)
    ]
    return PlaygroundResult("relu", shape_of(inputs), output, inputs, None, None, steps)


@dataclass(frozen=True)
class Im2Col:
    """Convolution as one matrix product: W_row (K × F·F·D) · X_col (F·F·D × H₂·W₂) + bias."""

    weight_rows: Tensor
    columns: Tensor
    product: Tensor
    output: Tensor
    conv_output: Tensor


def im2col(
    inputs: Tensor,
    kernels: Tensor,
    bias: Tensor | None = None,
    *,
    stride: Pair = 1,
    padding: Padding = "valid",
    dilation: Pair = 1,
) -> Im2Col:
    """Unfold every window into a column, multiply by the flattened filters, fold back.

    ``conv_output`` is ``F.conv2d`` on the same data, so the two can be compared number by number.
    """
    geometry = resolve_geometry(tuple(kernels.shape[-2:]), stride, padding, dilation)
    conv_output, _ = _conv_output(inputs, kernels, bias, geometry, "floor")
    columns = F.unfold(
        inputs[None], geometry.kernel, geometry.dilation, geometry.padding, geometry.stride
    )[0]
    weight_rows = kernels.reshape(kernels.shape[0], -1)
    product = weight_rows @ columns
    if bias is not None:
        product = product + bias[:, None]
    return Im2Col(weight_rows, columns, product, product.reshape(conv_output.shape), conv_output)


Operation = Literal["conv", "pool", "relu", "im2col"]


def run(operation: Operation, request: dict) -> PlaygroundResult | Im2Col:
    """Run one request body of ``POST /api/v1/playground/{operation}`` (also a preset's data).

    Raises:
        PlaygroundError: the request does not fit the formula or the playground's limits.
    """
    inputs = as_tensor(request["input"], "input", 3)
    if operation == "relu":
        return relu(inputs)
    names = ("stride", "padding", "dilation")
    options = {key: request[key] for key in names if request.get(key) is not None}
    if operation == "pool":
        return pool(
            inputs,
            request.get("kind", "max"),
            request["kernel_size"],
            **options,
            fit=request.get("fit", "strict"),
        )
    kernels = as_tensor(request["kernels"], "kernels", 4)
    bias = None if request.get("bias") is None else as_tensor(request["bias"], "bias", 1)
    if operation == "im2col":
        return im2col(inputs, kernels, bias, **options)
    return convolve(inputs, kernels, bias, **options, fit=request.get("fit", "strict"))
