"""The seeds' numbers, transcribed, and equivalent arrays where a seed shows only a figure.

Seeds (``shared/seeds/``): 000 (Zhihu, DNN/CNN/RNN), 002 (Juejin, edge detection and channels),
003 (Zhihu answers: Jiqizhixin's translation of Deshpande's guide, YJango's 横折 walk-through,
the im2col shapes) and 004 (convolution vs. fully connected). Every array below says whether
it is the seed's own (``transcribed``) or built to show the same thing (``equivalent``).
"""

Grid = list[list[float]]

CURVE_FILTER: Grid = [
    [0, 0, 0, 0, 0, 30, 0],
    [0, 0, 0, 0, 30, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
]
"""Transcribed, seed 003 "Pixel representation of filter" (first printing). Its second printing
shows one more 30 in the bottom row; with that one the sum would be 8100, not the seed's 6600."""

CURVE_RECEPTIVE_FIELD: Grid = [
    [0, 0, 0, 0, 0, 0, 30],
    [0, 0, 0, 0, 50, 50, 50],
    [0, 0, 0, 20, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
]
"""Transcribed, seed 003 "Pixel representation of the receptive field" (top-left of the image).
Against CURVE_FILTER: 4 × (50 × 30) + (20 × 30) = 6600."""

NOT_A_CURVE: Grid = [
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 50, 50, 50, 50, 50, 50],
]
"""Equivalent: the seed shows the top-right patch only as a picture; this "L" stroke lies
wholly where the curve filter is 0, so the product sum is the seed's 0."""


def curve_image(side: int = 32) -> Grid:
    """Equivalent: a side×side image, the curve patch top-left and the "L" patch top-right."""
    image = [[0.0] * side for _ in range(side)]
    for row in range(7):
        image[row][:7] = CURVE_RECEPTIVE_FIELD[row]
        image[row][side - 7 :] = NOT_A_CURVE[row]
    return image


def half_image(side: int = 8, bright: float = 10, vertical: bool = True) -> Grid:
    """Equivalent to seed 002's 8×8 edge picture: bright (10) left/top half, dark (0) the rest."""
    return [
        [bright if (col if vertical else row) < side // 2 else 0.0 for col in range(side)]
        for row in range(side)
    ]


VERTICAL_EDGE_FILTER: Grid = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]
"""Seed 002's 3×3 vertical-edge filter (shown as a figure; this is the standard one it depicts:
bright-left minus dark-right)."""

HORIZONTAL_EDGE_FILTER: Grid = [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
"""Seed 002: "只用把刚刚的filter旋转90°即可": the vertical filter turned by 90°."""


def numbered_grid(height: int, width: int, start: int = 0) -> Grid:
    """Pixel i holds the value i (row-major), as seed 003 numbers the 4×4 pixels 0…f."""
    return [[float(start + row * width + col) for col in range(width)] for row in range(height)]


def pattern_grid(height: int, width: int, seed: int, modulo: int = 10) -> Grid:
    """Equivalent data for figures with unreadable numbers: small deterministic integers.

    Integers keep every product and sum exact in the step-by-step view.
    """
    return [
        [float((seed * 7 + row * 5 + col * 3 + row * col) % modulo) for col in range(width)]
        for row in range(height)
    ]


def signed_kernel(size: int, seed: int) -> Grid:
    """Equivalent filter weights in -1, 0, 1, a different pattern for every seed."""
    return [
        [float((seed * 7919 + row * 104729 + col * 1299709) // 7 % 3 - 1) for col in range(size)]
        for row in range(size)
    ]


def rgb_image(side: int, modulo: int) -> list[Grid]:
    """Equivalent three-channel image of small deterministic integers."""
    return [pattern_grid(side, side, channel, modulo) for channel in range(3)]


def filter_bank(channels: int, count: int, size: int) -> list[list[Grid]]:
    """Equivalent filters (count × channels × size × size), each one different."""
    return [[signed_kernel(size, 3 * f + c) for c in range(channels)] for f in range(count)]


HENGZHE_CENTRE: Grid = [
    [0, 0, 0, 0],
    [0, 1, 1, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 0],
]
"""Equivalent to seed 003's 4×4 横折 (pixels 5, 6, a lit; 0 yellow, 1 dark): the stroke in the
middle, where the fully connected network was trained (nodes 5, 6, 9, a)."""

HENGZHE_CORNER: Grid = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 1, 1],
    [0, 0, 0, 1],
]
"""The same 横折 in the bottom-right corner (pixels a, b, f), which the FC network missed."""

HENGZHE_FILTER: Grid = [[1, 1], [0, 1]]
"""Equivalent 2×2 filter [w1 w2; w3 w4] shaped like 横折: 3 exactly where the stroke is."""

HENGZHE_FEATURE_MAP: Grid = [
    [1, 1, 0],
    [1, 3, 1],
    [0, 1, 1],
]
"""HENGZHE_CENTRE convolved with HENGZHE_FILTER: the 3×3 map whose only useful node is the 3."""

MAX_POOL_INPUT: Grid = [
    [1, 1, 2, 4],
    [5, 6, 7, 8],
    [3, 2, 1, 0],
    [1, 2, 3, 4],
]
"""Equivalent to the seeds' 2×2/stride-2 max-pooling figure (the CS231n example it reproduces):
max gives [[6, 8], [3, 4]]."""

SIGNED_MAP: Grid = [
    [-30, 0, 30, 30, 0, -30],
    [-30, 0, 30, 30, 0, -30],
    [-15, 5, 25, -25, -5, 15],
    [0, 10, 20, -20, -10, 0],
]
"""Equivalent feature map with negative responses for ReLU f(x) = max(0, x) (seed 003)."""
