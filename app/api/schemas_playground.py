"""Request and response models of the playground.

A request body's schema states every bound the server checks on its own: numbers are JSON numbers
(never booleans or strings) within ±``MAX_VALUE``, every array level has its least and greatest
length, hyper-parameters their ranges, and unknown fields are refused. What JSON Schema cannot
state, because it relates one field to another, is listed in ``CROSS_FIELD_RULES``: a body that
breaks one gets 422 with that rule's code, so a client can tell it from a malformed body
(``invalid_request``).
"""

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from app.core.playground import (
    MAX_CHANNELS,
    MAX_KERNEL_SIDE,
    MAX_KERNELS,
    MAX_SIDE,
    MAX_STEP_VALUES,
    MAX_STEPS,
    MAX_VALUE,
)

CROSS_FIELD_RULES: dict[str, str] = {
    "invalid_input": "every row of a grid is as long as the others, every plane as high",
    "invalid_kernels": "every filter is as deep as the input has channels; one bias per filter",
    "invalid_parameter": "'same' padding needs stride 1 and an odd (dilated) kernel; pooling "
    "padding is at most half the window; average pooling has no dilation",
    "does_not_fit": "the (dilated) window fits the padded input; with fit 'strict', a whole "
    "number of times: (W − K + 2P)/S + 1",
    "too_many_steps": f"at most {MAX_STEPS:,} output values explained, and at most "
    f"{MAX_STEP_VALUES:,} window values over all of them",
}
"""Code → rule for each check between fields of a body (the 422 response lists them)."""

Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)]
"""A JSON number (an integer or a float, never a boolean or a string)."""


def _json_integer(value: object) -> object:
    """JSON Schema's integer: 3 or 3.0 (a number with no fraction), never true or "3"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _side(least: int, most: int) -> Any:
    return Annotated[int, Field(ge=least, le=most), BeforeValidator(_json_integer)]


Row = Annotated[list[Number], Field(min_length=1, max_length=MAX_SIDE)]
Plane = Annotated[list[Row], Field(min_length=1, max_length=MAX_SIDE)]
Grid = Annotated[
    list[Plane],
    Field(
        min_length=1,
        max_length=MAX_CHANNELS,
        description=f"channels × height × width (≤ {MAX_CHANNELS} × {MAX_SIDE} × {MAX_SIDE}); "
        "rows of equal length",
    ),
]
KernelRow = Annotated[list[Number], Field(min_length=1, max_length=MAX_KERNEL_SIDE)]
KernelPlane = Annotated[list[KernelRow], Field(min_length=1, max_length=MAX_KERNEL_SIDE)]
Kernel = Annotated[list[KernelPlane], Field(min_length=1, max_length=MAX_CHANNELS)]
Kernels = Annotated[
    list[Kernel],
    Field(
        min_length=1,
        max_length=MAX_KERNELS,
        description=f"filters × channels × kh × kw (≤ {MAX_KERNELS} × {MAX_CHANNELS} × "
        f"{MAX_KERNEL_SIDE} × {MAX_KERNEL_SIDE}); a filter as deep as the input",
    ),
]
Bias = Annotated[list[Number], Field(min_length=1, max_length=MAX_KERNELS)]


def _number_or_pair(side: Any, *names: str) -> Any:
    """One number for both axes, or [height, width]; ``names`` adds string forms. An error names
    the one form the value takes ("stride.pair.1: …"), not every form it is not."""
    forms = [Annotated[side, Tag("number")], Annotated[tuple[side, side], Tag("pair")]]
    if names:
        forms.append(Annotated[Literal[names], Tag("name")])

    def form(value: object) -> str:
        if names and isinstance(value, str):
            return "name"
        return "pair" if isinstance(value, list | tuple) else "number"

    return Annotated[Union[tuple(forms)], Discriminator(form)]  # noqa: UP007


KernelSize = _number_or_pair(_side(1, MAX_KERNEL_SIDE))
Stride = _number_or_pair(_side(1, MAX_SIDE))
Dilation = Stride
PoolPadding = _number_or_pair(_side(0, MAX_KERNEL_SIDE))
Padding = _number_or_pair(_side(0, MAX_KERNEL_SIDE), "valid", "same")
Fit = Literal["strict", "floor"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReluRequest(_Body):
    input: Grid


class Im2ColRequest(_Body):
    input: Grid
    kernels: Kernels
    bias: Bias | None = Field(None, description="one per filter")
    stride: Stride = 1
    padding: Padding = "valid"
    dilation: Dilation = 1


class ConvRequest(Im2ColRequest):
    fit: Fit = Field(
        "strict", description="strict: refuse when (W − K + 2P)/S is not whole; floor: as torch"
    )


class PoolRequest(_Body):
    input: Grid
    kind: Literal["max", "avg"] = "max"
    kernel_size: KernelSize = 2
    stride: Stride | None = Field(None, description="defaults to the window size")
    padding: PoolPadding = 0
    dilation: Dilation = 1
    fit: Fit = "strict"


class AxisFitOut(BaseModel):
    axis: str
    input: int
    kernel: int
    effective_kernel: int = Field(description="D·(K − 1) + 1")
    stride: int
    padding: int
    dilation: int
    span: int = Field(description="W − K + 2P")
    output: int = Field(description="the size torch gives (floored)")
    exact_output: float = Field(description="(W − K + 2P)/S + 1 before rounding")
    fits: bool
    formula: str
    explanation: dict[str, str] = Field(description="why it fits or not: {'en', 'zh'}")


class StepOut(BaseModel):
    channel: int
    y: int
    x: int
    origin: list[int] = Field(description="window top-left [row, col] in the padded input")
    window: list[Any]
    value: float = Field(description="the output value torch computed")
    products: list[Any] | None = None
    total: float | None = Field(None, description="sum of products (conv) or of the window (avg)")
    bias: float | None = None
    argmax: list[int] | None = None
    count: int | None = None


class PlaygroundOut(BaseModel):
    operation: str
    input_shape: list[int]
    output_shape: list[int]
    output: list[Any]
    padded_input: list[Any]
    kernel: list[int] | None = None
    stride: list[int] | None = None
    padding: list[int] | None = None
    dilation: list[int] | None = None
    fits: list[AxisFitOut] | None = None
    total_steps: int
    steps: list[StepOut]


class Im2ColOut(BaseModel):
    weight_rows: list[list[float]] = Field(description="W_row: filters × (F·F·D)")
    columns: list[list[float]] = Field(description="X_col: (F·F·D) × (H₂·W₂)")
    product: list[list[float]] = Field(description="W_row · X_col (+ bias)")
    output: list[Any] = Field(description="the product reshaped to filters × H₂ × W₂")
    conv_output: list[Any] = Field(description="F.conv2d on the same data")
    shapes: dict[str, list[int]]
    max_abs_difference: float = Field(description="between output and conv_output")


class LimitsOut(BaseModel):
    max_channels: int
    max_side: int
    max_kernels: int
    max_kernel_side: int
    max_steps: int
    max_step_values: int
    max_value: float = Field(description="largest magnitude of a number in a request")
