"""Receptive-field geometry: which input pixels a unit of a layer can see.

Per axis a layer's receptive field is three numbers, as in torch-scan's ``modules/receptive.py``:
``size`` (pixels one unit sees), ``jump`` (input pixels between neighbouring units) and ``start``
(input coordinate of the centre of unit 0, possibly fractional or negative). Each kind of layer
maps them with a pure function below; ``tracer.compute_receptive_fields`` applies them along a
real model's graph.
"""

from dataclasses import dataclass
from typing import Any

Pair = int | tuple[int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units, per axis (height, width), in input pixels.

    A global field (every unit sees the whole image) has ``size`` = the image, ``jump`` 0 and
    ``start`` = the image centre, so the generic box formula still yields the whole image and
    the per-layer functions keep it global.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    is_global: bool = False


INPUT_RECEPTIVE_FIELD = ReceptiveField(size=(1, 1), jump=(1, 1), start=(0.0, 0.0))
"""The image itself: each pixel sees only itself."""


@dataclass(frozen=True)
class Box:
    """Inclusive input-pixel rectangle; may reach past the image until ``clip_box``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return max(0, self.bottom - self.top + 1)

    @property
    def width(self) -> int:
        return max(0, self.right - self.left + 1)


def as_pair(value: Pair) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; torch layers accept either form for kernel, stride, padding."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def global_receptive_field(height: int, width: int) -> ReceptiveField:
    """Field of a unit that depends on the whole image of ``height`` by ``width`` pixels."""
    return ReceptiveField((height, width), (0, 0), ((height - 1) / 2, (width - 1) / 2), True)


def conv_receptive_field(
    prev: ReceptiveField, kernel: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1
) -> ReceptiveField:
    """Field after a convolution (any groups, so depthwise too) given the field of its input.

    Per axis, with ``span = dilation * (kernel - 1)`` (the effective kernel minus one):
    size grows by ``span * jump``, jump is multiplied by the stride, and the centre of unit 0
    moves to the middle of its window, ``span / 2 - padding`` input units from the start.
    Only the top/left padding matters: the bottom/right one only adds units at the far edge.
    """
    kernel, stride, padding, dilation = map(as_pair, (kernel, stride, padding, dilation))
    size, jump, start = [], [], []
    for axis in (0, 1):
        span = dilation[axis] * (kernel[axis] - 1)
        size.append(prev.size[axis] + span * prev.jump[axis])
        jump.append(prev.jump[axis] * stride[axis])
        start.append(prev.start[axis] + (span / 2 - padding[axis]) * prev.jump[axis])
    return ReceptiveField(
        (size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]), prev.is_global
    )


def pool_receptive_field(
    prev: ReceptiveField,
    kernel: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> ReceptiveField:
    """Field after max/avg pooling: a window like a convolution's; stride defaults to the kernel.

    ``ceil_mode`` only adds units at the far edge, so it does not change the field.
    """
    pool_stride = kernel if stride is None else stride
    return conv_receptive_field(prev, kernel, pool_stride, padding, dilation)


def pad_receptive_field(prev: ReceptiveField, top: int, left: int) -> ReceptiveField:
    """Field after zero-padding ``top``/``left`` pixels (negative: cropping).

    Bottom/right padding does not move any existing unit, so it is not an argument.
    """
    return conv_receptive_field(prev, 1, 1, (top, left))


def union_receptive_field(*fields: ReceptiveField) -> ReceptiveField:
    """Field of a unit combining the same unit of several branches (add, concat, multiply).

    The result is the bounding box of the branches' boxes. When branches are off-centre on both
    axes their union is not a rectangle, and the box's corners hold pixels no branch reads.

    Raises:
        ValueError: the branches step through the image at different rates, so no single
            (size, jump, start) describes the union for every unit.
    """
    global_fields = [rf for rf in fields if rf.is_global]
    if global_fields:
        return global_fields[0]
    jumps = {rf.jump for rf in fields}
    if len(jumps) > 1:
        raise ValueError(f"branches disagree in jump: {sorted(jumps)}")
    size, start = [], []
    for axis in (0, 1):
        low = min(rf.start[axis] - (rf.size[axis] - 1) / 2 for rf in fields)
        high = max(rf.start[axis] + (rf.size[axis] - 1) / 2 for rf in fields)
        size.append(round(high - low) + 1)
        start.append((low + high) / 2)
    return ReceptiveField((size[0], size[1]), fields[0].jump, (start[0], start[1]))


def receptive_field_box(rf: ReceptiveField, y: int, x: int, input_hw: tuple[int, int]) -> Box:
    """Input pixels that unit (``y``, ``x``) sees, unclipped; a global field gives the image.

    ``start - (size - 1) / 2`` is always a whole number (0 for the image, and every function
    above keeps it whole), and a multiple of 1/2 is exact in a float, so ``round`` only turns
    the float into an int.
    """
    height, width = input_hw
    if rf.is_global:
        return Box(0, 0, height - 1, width - 1)
    top = round(rf.start[0] - (rf.size[0] - 1) / 2) + y * rf.jump[0]
    left = round(rf.start[1] - (rf.size[1] - 1) / 2) + x * rf.jump[1]
    return Box(top, left, top + rf.size[0] - 1, left + rf.size[1] - 1)


def clip_box(box: Box, height: int, width: int) -> Box:
    """The part of ``box`` inside the image (a box wholly outside gets zero height or width)."""
    return Box(
        max(box.top, 0), max(box.left, 0), min(box.bottom, height - 1), min(box.right, width - 1)
    )


def receptive_field_json(rf: ReceptiveField) -> dict[str, Any]:
    """JSON-ready dict: ``size``, ``jump``, ``start`` as [h, w] lists, plus ``is_global``."""
    return {
        "size": list(rf.size),
        "jump": list(rf.jump),
        "start": list(rf.start),
        "is_global": rf.is_global,
    }
