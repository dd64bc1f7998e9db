"""Receptive-field geometry: which input pixels a unit of a layer can see.

Per axis a layer's receptive field is three numbers, as in torch-scan's ``modules/receptive.py``:
``size`` (pixels one unit sees), ``jump`` (input pixels between neighbouring units) and ``start``
(input coordinate of the centre of unit 0, possibly fractional or negative). Each kind of layer
maps them with a pure function below; ``tracer.compute_receptive_fields`` applies them along a
real model's graph.
"""

from dataclasses import dataclass, replace
from typing import Any

Pair = int | tuple[int, int]


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


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units, per axis (height, width), in input pixels.

    Attributes:
        size: pixels one unit sees.
        jump: input pixels between neighbouring units; 0 for a global field.
        start: input coordinate of the centre of unit 0.
        is_global: every unit sees the same region: everything the units of the map it was
            computed from saw together (the whole image, or less when an unpadded stride never
            reached the last rows). ``size`` and ``start`` describe that region and ``jump`` is 0,
            so the generic box formula yields it and the per-layer functions keep it global.
        gated: besides its box, every unit is scaled or shifted by a value computed from
            everything the layer's input saw (squeeze-excitation's channel gate, a norm's
            statistics over height and width). The box is the spatial path's alone.
        seen: the image pixels the units see together when that is less than the whole image
            (the last row of an odd image under an unpadded stride-2 conv, a crop); every unit's
            box is cut to it inside the image. None: the units see every pixel.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    is_global: bool = False
    gated: bool = False
    seen: Box | None = None


INPUT_RECEPTIVE_FIELD = ReceptiveField(size=(1, 1), jump=(1, 1), start=(0.0, 0.0))
"""The image itself: each pixel sees only itself."""


def as_pair(value: Pair) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; torch layers accept either form for kernel, stride, padding."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def global_receptive_field(height: int, width: int) -> ReceptiveField:
    """Field of a unit that depends on the whole image of ``height`` by ``width`` pixels."""
    return ReceptiveField((height, width), (0, 0), ((height - 1) / 2, (width - 1) / 2), True)


def covering_receptive_field(rf: ReceptiveField, image_hw: tuple[int, int]) -> ReceptiveField:
    """Field of a unit that reads every unit of a map with field ``rf`` (global pool, linear).

    It sees what those units saw together, ``rf.seen`` (SqueezeNet's stem never reaches the last
    row, so neither does its global pool), and keeps ``gated``.
    """
    if rf.is_global:
        return rf
    height, width = image_hw
    seen = rf.seen or Box(0, 0, height - 1, width - 1)
    centre = ((seen.top + seen.bottom) / 2, (seen.left + seen.right) / 2)
    return ReceptiveField((seen.height, seen.width), (0, 0), centre, True, rf.gated, rf.seen)


def narrow_receptive_field(
    rf: ReceptiveField, units_hw: tuple[int, int], image_hw: tuple[int, int]
) -> ReceptiveField:
    """``rf`` with ``seen`` cut to what a map of ``units_hw`` units sees together.

    A unit's window is exact once cut to what its input map saw (``seen``), so the map sees from
    the first pixel of its first unit to the last pixel of its last unit. An unpadded stride-2
    conv on 50 rows has 24 units reading rows 0..48: row 49 is never seen, and a ceil-mode pool
    after it, whose last window hangs past unit 23, reaches row 48, not 49.
    """
    if rf.is_global:
        return rf
    height, width = image_hw
    first = clip_box(receptive_field_box(rf, 0, 0, image_hw), height, width)
    last = clip_box(
        receptive_field_box(rf, units_hw[0] - 1, units_hw[1] - 1, image_hw), height, width
    )
    seen = Box(first.top, first.left, last.bottom, last.right)
    return replace(rf, seen=None if seen == Box(0, 0, height - 1, width - 1) else seen)


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
    return replace(
        prev, size=(size[0], size[1]), jump=(jump[0], jump[1]), start=(start[0], start[1])
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
    A global branch among local ones is a gate (squeeze-excitation's ``x * scale``): the result
    keeps the local branches' box and is marked ``gated``. Global branches alone stay global.

    Raises:
        ValueError: the branches step through the image at different rates, so no single
            (size, jump, start) describes the union for every unit.
    """
    paths = [rf for rf in fields if not rf.is_global] or list(fields)
    jumps = {rf.jump for rf in paths}
    if len(jumps) > 1:
        raise ValueError(f"branches disagree in jump: {sorted(jumps)}")
    size, start = [], []
    for axis in (0, 1):
        low = min(rf.start[axis] - (rf.size[axis] - 1) / 2 for rf in paths)
        high = max(rf.start[axis] + (rf.size[axis] - 1) / 2 for rf in paths)
        size.append(round(high - low) + 1)
        start.append((low + high) / 2)
    seens = [rf.seen for rf in paths]
    seen = None
    if all(box is not None for box in seens):
        seen = Box(
            min(box.top for box in seens),
            min(box.left for box in seens),
            max(box.bottom for box in seens),
            max(box.right for box in seens),
        )
    return ReceptiveField(
        (size[0], size[1]),
        paths[0].jump,
        (start[0], start[1]),
        paths[0].is_global,
        len(paths) < len(fields) or any(rf.gated for rf in fields),
        seen,
    )


def receptive_field_box(rf: ReceptiveField, y: int, x: int, input_hw: tuple[int, int]) -> Box:
    """Input pixels that unit (``y``, ``x``) sees, unclipped: past the image lies padding.

    ``start - (size - 1) / 2`` is always a whole number (0 for the image, and every function
    above keeps it whole), and a multiple of 1/2 is exact in a float, so ``round`` only turns
    the float into an int. Inside the image the box is cut to ``rf.seen``; past a border of the
    image it goes on only where the units reach that border (elsewhere they see no padding).
    """
    top = round(rf.start[0] - (rf.size[0] - 1) / 2) + y * rf.jump[0]
    left = round(rf.start[1] - (rf.size[1] - 1) / 2) + x * rf.jump[1]
    box = Box(top, left, top + rf.size[0] - 1, left + rf.size[1] - 1)
    seen = rf.seen
    if seen is None:
        return box
    height, width = input_hw
    return Box(
        box.top if seen.top == 0 else max(box.top, seen.top),
        box.left if seen.left == 0 else max(box.left, seen.left),
        box.bottom if seen.bottom == height - 1 else min(box.bottom, seen.bottom),
        box.right if seen.right == width - 1 else min(box.right, seen.right),
    )


def clip_box(box: Box, height: int, width: int) -> Box:
    """The part of ``box`` inside the image (a box wholly outside gets zero height or width)."""
    return Box(
        max(box.top, 0), max(box.left, 0), min(box.bottom, height - 1), min(box.right, width - 1)
    )


def receptive_field_json(rf: ReceptiveField) -> dict[str, Any]:
    """JSON-ready dict: ``size``, ``jump``, ``start`` as [h, w] lists, ``is_global``, ``gated``
    and ``seen`` as [top, left, bottom, right] (None: the whole image)."""
    seen = rf.seen
    return {
        "size": list(rf.size),
        "jump": list(rf.jump),
        "start": list(rf.start),
        "is_global": rf.is_global,
        "gated": rf.gated,
        "seen": None if seen is None else [seen.top, seen.left, seen.bottom, seen.right],
    }
