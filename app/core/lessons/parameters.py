"""Why convolution: the seeds' parameter counts, fully connected vs. local vs. shared weights.

Each comparison computes its numbers from the layer sizes (never types them in), and carries the
seed's own figure and formula so the page can show both and point out where a seed slipped.
"""

import math
from dataclasses import dataclass

from app.core.lessons.text import Text

BYTES_PER_FLOAT32 = 4


def fully_connected_weights(inputs: int, outputs: int) -> int:
    """Every output unit has one weight per input unit (biases not counted, as in the seeds)."""
    return inputs * outputs


def locally_connected_weights(outputs: int, window: int) -> int:
    """Every output unit has its own weights, but only for its window."""
    return outputs * window


def shared_weights(window: int, filters: int = 1) -> int:
    """All output units of a map share one window of weights: a convolution filter."""
    return window * filters


@dataclass(frozen=True)
class Count:
    """One way of wiring a layer, its weight count, and how the seed states it."""

    scheme: Text
    formula: str
    weights: int
    seed_says: str


@dataclass(frozen=True)
class Comparison:
    slug: str
    title: Text
    note: Text
    source: str
    counts: tuple[Count, ...]


def _float32_size(weights: int) -> str:
    size = weights * BYTES_PER_FLOAT32
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def _comparisons() -> tuple[Comparison, ...]:
    image = 1000 * 1000
    fc = fully_connected_weights(image, image)
    local = locally_connected_weights(image, 10 * 10)
    return (
        Comparison(
            "megapixel",
            Text(
                "A 1000×1000 image, a hidden layer of 1000×1000 units",
                "1000×1000 的图像，接 1000×1000 个隐藏单元",
            ),
            Text(
                f'10¹² float32 weights take {_float32_size(fc)}; the seed\'s "about 400MB" is '
                f"the locally connected layer's {_float32_size(local)}. Local windows cut 4 "
                "orders of magnitude, sharing one 10×10 window cuts the rest. (With the seed's "
                "stride of 10 there would be only 100×100 units: 10⁶ local weights.)",
                f"10¹² 个 float32 权重占 {_float32_size(fc)}；原文“约400MB”其实是局部连接层 "
                f"{_float32_size(local)} 的大小。局部连接减少 4 个数量级，共享一个 10×10 窗口"
                "则只剩 100 个。（若按原文步幅 10，只有 100×100 个单元：局部权重为 10⁶。）",
            ),
            "004 · 参数量有效性 / 权重共享",
            (
                Count(Text("fully connected", "全连接"), "1000×1000×1000×1000", fc, "10^12"),
                Count(
                    Text("locally connected (10×10)", "局部连接（10×10）"),
                    "1000×1000×100",
                    local,
                    "10^8",
                ),
                Count(
                    Text("shared (one 10×10 filter)", "权重共享（一个 10×10 滤波器）"),
                    "10×10",
                    shared_weights(100),
                    "100",
                ),
            ),
        ),
        Comparison(
            "argb-100-kernels",
            Text(
                "1K×1K ARGB image, 1M hidden units vs. 100 kernels",
                "1K×1K 的 ARGB 图像：10⁶ 个隐藏单元与 100 个卷积核",
            ),
            Text(
                "The seed counts one 100×100 kernel per feature map and leaves out the four "
                "ARGB channels (with them: 4 × 10⁶).",
                "原文每个卷积核按 100×100 计，未算 ARGB 四个通道（算上为 4 × 10⁶）。",
            ),
            "000 · CNN 段落",
            (
                Count(
                    Text("fully connected", "全连接"),
                    "10⁶ × 10⁶",
                    fully_connected_weights(image, image),
                    "10^12",
                ),
                Count(
                    Text("100 kernels of 100×100", "100 个 100×100 卷积核"),
                    "100×100×100",
                    shared_weights(100 * 100, 100),
                    "10^6",
                ),
            ),
        ),
        Comparison(
            "eight-by-eight",
            Text("8×8 image, 9 units vs. one 3×3 filter", "8×8 图像：9 个单元与一个 3×3 滤波器"),
            Text("Seed 002: biases left out.", "教程 002：不计偏置。"),
            "002 · 四、1.参数共享机制",
            (
                Count(
                    Text("fully connected", "全连接"), "64×9", fully_connected_weights(64, 9), "576"
                ),
                Count(
                    Text("shared (3×3 filter)", "权重共享（3×3 滤波器）"),
                    "3×3",
                    shared_weights(9),
                    "9",
                ),
            ),
        ),
        Comparison(
            "mlp-32x32",
            Text("A 32×32×3 digit through 1024 and 512 units", "32×32×3 的数字接 1024、512 个单元"),
            Text(
                "Seed 003 multiplies all the sizes together, 3×32×32×1024×512 = 1,610,612,736. "
                "Weights of consecutive layers add up instead: 3072×1024 + 1024×512 = "
                f"{fully_connected_weights(3072, 1024) + fully_connected_weights(1024, 512):,}.",
                "教程 003 把各层大小全部相乘：3×32×32×1024×512 = 1,610,612,736。实际上相邻层的"
                "权重是相加的：3072×1024 + 1024×512 = "
                f"{fully_connected_weights(3072, 1024) + fully_connected_weights(1024, 512):,}。",
            ),
            "003 · 蒋竺波的回答",
            (
                Count(
                    Text("seed's product", "原文的连乘"),
                    "3×32×32×1024×512",
                    math.prod((3, 32, 32, 1024, 512)),
                    "1610612736",
                ),
                Count(
                    Text("fully connected, two layers", "两层全连接"),
                    "3072×1024 + 1024×512",
                    fully_connected_weights(3072, 1024) + fully_connected_weights(1024, 512),
                    "—",
                ),
            ),
        ),
        Comparison(
            "filter-weights",
            Text("Weights of one filter", "一个滤波器的权重"),
            Text(
                "A filter is as deep as its input: 5×5×3 has 75 weights (seed 003), 3×3×3 has "
                "27 (seed 002), and four of them form W1 of shape (3, 3, 3, 4): 108 weights and "
                "4 biases.",
                "滤波器与输入一样深：5×5×3 有 75 个权重（教程 003），3×3×3 有 27 个（教程 002），"
                "4 个组成形状为 (3,3,3,4) 的 W1：108 个权重加 4 个偏置。",
            ),
            "002 / 003",
            (
                Count(
                    Text("5×5×3 filter", "5×5×3 滤波器"), "5×5×3", shared_weights(5 * 5 * 3), "75"
                ),
                Count(
                    Text("3×3×3 filter", "3×3×3 滤波器"), "3×3×3", shared_weights(3 * 3 * 3), "27"
                ),
                Count(
                    Text("W1, four 3×3×3 filters", "W1：4 个 3×3×3 滤波器"),
                    "3×3×3×4",
                    shared_weights(27, 4),
                    "(3,3,3,4)",
                ),
            ),
        ),
    )


COMPARISONS: tuple[Comparison, ...] = _comparisons()
COMPARISON_INDEX: dict[str, Comparison] = {item.slug: item for item in COMPARISONS}
