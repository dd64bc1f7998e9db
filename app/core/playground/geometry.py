"""Window geometry of the playground: limits, hyper-parameters, and O = (W − K + 2P)/S + 1.

For a dilated kernel K becomes D·(K − 1) + 1. When O is not a whole number the combination "does
not fit" (the seeds' 7×7 input, 3×3 kernel, stride 3): ``AxisFit.explanation`` says why, in English
and Chinese, which pixels are never covered, and which strides or padding would fit.
"""

from dataclasses import dataclass
from typing import Literal

MAX_CHANNELS = 3
"""Input channels a student can type or see at once (grey or RGB)."""
MAX_SIDE = 32
"""Largest input height/width: the seeds' 32×32×3 image."""
MAX_KERNELS = 8
"""Output channels (filters) per request."""
MAX_KERNEL_SIDE = 11
"""Largest kernel height/width (AlexNet's first layer)."""
MAX_STEPS = 4096
"""Output values explained one by one per request (32×32×3 with 'same' padding is 3072)."""
MAX_STEP_VALUES = 250_000
"""Window values returned over all steps (each step carries its window and products)."""
MAX_VALUE = 1_000_000.0
"""Largest magnitude of a number a student gives: products and sums stay far from float64's
limits (3·11·11 products of 10¹² at most), so every answer is a finite number."""

Fit = Literal["strict", "floor"]


class PlaygroundError(ValueError):
    """A request the playground will not compute; ``code`` is stable, the message explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AxisFit:
    """O = (W − K + 2P)/S + 1 along one axis, with the reason when it is not a whole number."""

    axis: str
    input: int
    kernel: int
    stride: int
    padding: int
    dilation: int

    @property
    def effective_kernel(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    @property
    def span(self) -> int:
        """W − K + 2P: how far the window can slide."""
        return self.input - self.effective_kernel + 2 * self.padding

    @property
    def remainder(self) -> int:
        return self.span % self.stride if self.span >= 0 else 0

    @property
    def fits(self) -> bool:
        return self.span >= 0 and self.remainder == 0

    @property
    def output(self) -> int:
        """The framework's size (floored); 0 when the window is larger than the padded input."""
        return self.span // self.stride + 1 if self.span >= 0 else 0

    @property
    def exact_output(self) -> float:
        return self.span / self.stride + 1

    def formula(self) -> str:
        kernel = (
            f"{self.effective_kernel}"
            if self.dilation == 1
            else (f"({self.dilation}·({self.kernel} − 1) + 1)")
        )
        value = self.exact_output
        shown = f"{value:g}" if (100 * self.span) % self.stride == 0 else f"{value:.2f}…"
        return (
            f"O = ({self.input} − {kernel} + 2·{self.padding})/{self.stride} + 1 "
            f"= {self.span}/{self.stride} + 1 = {shown}"
        )

    def padding_that_fits(self) -> int | None:
        """Smallest padding P ≤ K that makes W − K + 2P a non-negative multiple of S, if any."""
        for padding in range(self.padding, self.padding + self.effective_kernel + 1):
            span = self.input - self.effective_kernel + 2 * padding
            if span >= 0 and span % self.stride == 0:
                return padding
        return None

    def explanation(self) -> dict[str, str]:
        """Why this axis fits or not, in English and Chinese, with the formula filled in."""
        formula = self.formula()
        k, w = self.effective_kernel, self.input + 2 * self.padding
        if self.span < 0:
            return {
                "en": f"{self.axis}: {formula}. The {k}-pixel window is larger than the "
                f"{w} (padded) pixels, so it fits nowhere.",
                "zh": f"{_ZH_AXIS[self.axis]}：{formula}。{k} 像素的窗口比（填充后）{w} 像素的"
                "输入还大，无处可放。",
            }
        if self.fits:
            return {
                "en": f"{self.axis}: {formula}. The window fits exactly {self.output} "
                f"time{'s' if self.output != 1 else ''}.",
                "zh": f"{_ZH_AXIS[self.axis]}：{formula}。窗口恰好放下 {self.output} 次。",
            }
        starts = [i * self.stride for i in range(self.output)]
        shown = starts if len(starts) <= 4 else [*starts[:2], "…", starts[-1]]
        missed = self.remainder
        fix = self.padding_that_fits()
        fix_en = f" Padding {fix} would fit." if fix is not None else ""
        fix_zh = f"填充 {fix} 就能整除。" if fix is not None else ""
        divisors = [s for s in range(1, self.span + 1) if self.span % s == 0] or [1]
        return {
            "en": f"{self.axis}: {formula} is not a whole number, so the window does not fit: "
            f"it starts at {', '.join(map(str, shown))}, and one more stride would run past "
            f"the edge, leaving the last {missed} pixel(s) never covered. Strides that fit: "
            f"{', '.join(map(str, divisors))}.{fix_en} PyTorch floors to {self.output}.",
            "zh": f"{_ZH_AXIS[self.axis]}：{formula} 不是整数，窗口放不下：起点依次为 "
            f"{'、'.join(map(str, shown))}，再移一步就越过边界，"
            f"最后 {missed} 个像素永远不会被覆盖。"
            f"能整除的步幅：{'、'.join(map(str, divisors))}。{fix_zh}PyTorch 会向下取整为 "
            f"{self.output}。",
        }


_ZH_AXIS = {"height": "高", "width": "宽"}


@dataclass(frozen=True)
class Geometry:
    """Window hyper-parameters of one request, per axis (height, width), padding resolved."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def fits(self, height: int, width: int) -> tuple[AxisFit, AxisFit]:
        return tuple(  # type: ignore[return-value]
            AxisFit(axis, size, self.kernel[i], self.stride[i], self.padding[i], self.dilation[i])
            for i, (axis, size) in enumerate((("height", height), ("width", width)))
        )


Pair = int | tuple[int, int] | list[int]
Padding = Literal["valid", "same"] | Pair


def _pair(value: Pair, name: str, low: int, high: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    if len(pair) != 2 or not whole or not all(low <= v <= high for v in pair):
        raise PlaygroundError(
            "invalid_parameter", f"{name} must be 1 or 2 integers in {low}..{high}"
        )
    return pair[0], pair[1]


def resolve_geometry(
    kernel: Pair, stride: Pair = 1, padding: Padding = "valid", dilation: Pair = 1
) -> Geometry:
    """Check the hyper-parameters and turn ``valid``/``same`` into pixel counts.

    ``same`` is P = D·(K − 1)/2 (the seeds' (K − 1)/2): whole only for odd kernels, and it keeps
    the size only at stride 1, so other cases are refused with that reason.
    """
    kernel = _pair(kernel, "kernel", 1, MAX_KERNEL_SIDE)
    stride = _pair(stride, "stride", 1, MAX_SIDE)
    dilation = _pair(dilation, "dilation", 1, MAX_SIDE)
    if padding == "valid":
        pads = (0, 0)
    elif padding == "same":
        if stride != (1, 1):
            raise PlaygroundError(
                "invalid_parameter",
                "'same' padding keeps the size only at stride 1; give the padding as numbers",
            )
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation, strict=True)):
            raise PlaygroundError(
                "invalid_parameter",
                "'same' padding P = (K − 1)/2 is whole only for an odd kernel size",
            )
        pads = (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
    else:
        pads = _pair(padding, "padding", 0, MAX_KERNEL_SIDE)
    return Geometry(kernel, stride, pads, dilation)
