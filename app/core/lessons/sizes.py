"""The seeds' output-size examples, each run through O = (W − K + 2P)/S + 1."""

from dataclasses import dataclass

from app.core.lessons.text import Text
from app.core.playground import AxisFit


@dataclass(frozen=True)
class SizeExample:
    """One width (or height) through one layer, with the size the seed states."""

    label: Text
    source: str
    seed_says: Text
    fit: AxisFit


def _example(label: Text, source: str, seed_says: str | Text, *args: int) -> SizeExample:
    said = seed_says if isinstance(seed_says, Text) else Text(seed_says, seed_says)
    return SizeExample(label, source, said, AxisFit("width", *args))


SIZE_EXAMPLES: tuple[SizeExample, ...] = (
    _example(Text("32×32, 5×5 filter", "32×32，5×5 滤波器"), "003", "28", 32, 5, 1, 0, 1),
    _example(
        Text("32×32, 5×5, zero padding 2", "32×32，5×5，零填充 2"), "003", "32", 32, 5, 1, 2, 1
    ),
    _example(
        Text("7×7, 3×3, stride 1", "7×7，3×3，步幅 1"),
        "003",
        Text("5 (figure)", "5（图示）"),
        7,
        3,
        1,
        0,
        1,
    ),
    _example(
        Text("7×7, 3×3, stride 2", "7×7，3×3，步幅 2"),
        "003",
        Text("3 (figure)", "3（图示）"),
        7,
        3,
        2,
        0,
        1,
    ),
    _example(
        Text("7×7, 3×3, stride 3", "7×7，3×3，步幅 3"),
        "003",
        Text("does not fit", "放不下"),
        7,
        3,
        3,
        0,
        1,
    ),
    _example(Text("8×8, 3×3 (edge detection)", "8×8，3×3（边界检测）"), "002", "6", 8, 3, 1, 0, 1),
    _example(Text("8×8, 3×3, 'same'", "8×8，3×3，保持尺寸的填充"), "002", "8", 8, 3, 1, 1, 1),
    _example(
        Text("8×8, 3×3, stride 2", "8×8，3×3，步幅 2"),
        "002",
        Text("3 (rounded down)", "3（向下取整）"),
        8,
        3,
        2,
        0,
        1,
    ),
    _example(Text("4×4, 2×2 filter", "4×4，2×2 滤波器"), "003", "3", 4, 2, 1, 0, 1),
    _example(Text("4×4, 3×3, zero padding 1", "4×4，3×3，零填充 1"), "003", "4", 4, 3, 1, 1, 1),
    _example(
        Text("7×7 curve filter on 32×32", "7×7 曲线滤波器作用于 32×32"), "003", "28", 32, 7, 1, 0, 1
    ),
    _example(
        Text("AlexNet conv1: 224, 11×11/4, pad 2", "AlexNet conv1：224，11×11/4，填充 2"),
        "gallery",
        "55",
        224,
        11,
        4,
        2,
        1,
    ),
    _example(
        Text("ZFNet conv1: 224, 7×7/2, pad 1", "ZFNet conv1：224，7×7/2，填充 1"),
        "gallery",
        "110",
        224,
        7,
        2,
        1,
        1,
    ),
)
"""``seed_says`` is the seed's own figure; the curve-filter line shows the seed's slip (28, not
26), ZFNet's the floor its paper's 110 needs."""
