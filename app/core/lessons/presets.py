"""The seeds' worked examples as playground presets: each one a request the playground API takes.

A preset's ``request`` is exactly the JSON body of ``POST /api/v1/playground/{operation}``, so the
page, the API and the tests run the same data; ``highlights`` name the output values the seed
talks about (the 6600, the 0, the 3). ``equivalent`` is the note shown on examples whose seed
figure is only an image: their arrays were built to show the same thing, and the note says so.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.lessons import seed_data as seed
from app.core.lessons.text import Text

Operation = Literal["conv", "pool", "relu", "im2col"]

SYMBOLIC = Text(
    "Equivalent example: the seed writes this with symbols (x, w, f(x)), not numbers; the numbers "
    "here were chosen to make the arithmetic visible.",
    "等价例子：原文此处用符号（x、w、f(x)）而非具体数字书写；"
    "这里的数字是为让计算过程清晰可见而选取的。",
)
FIGURE = Text(
    "Equivalent example: the seed shows this as a figure without readable numbers, so the values "
    "here were chosen to show the same thing.",
    "等价例子：原文此处只有图片、没有可读的数值，这里的数值是为演示同一道理而构造的。",
)


@dataclass(frozen=True)
class Highlight:
    """An output value the seed points at: (channel, y, x) and what it means."""

    channel: int
    y: int
    x: int
    label: Text


@dataclass(frozen=True)
class Preset:
    slug: str
    operation: Operation
    title: Text
    description: Text
    source: str
    equivalent: Text | None
    request: dict[str, Any]
    highlights: tuple[Highlight, ...] = field(default_factory=tuple)


def _conv(inputs: list, kernels: list, **options: Any) -> dict[str, Any]:
    return {"input": inputs, "kernels": kernels, **options}


SEVEN = [seed.numbered_grid(7, 7)]
BOX_3X3 = [[[[1.0] * 3] * 3]]
RGB_32 = seed.rgb_image(32, modulo=256)
RGB_8 = seed.rgb_image(8, modulo=10)


def _seven(slug: str, stride: int, padding: Any, out: Text, zh_title: str) -> Preset:
    return Preset(
        slug,
        "conv",
        Text(f"7×7 input, 3×3 filter, stride {stride}, padding {padding}", zh_title),
        Text(
            f"Seed 003's stride example: {out.en}. Pixel i holds i and the filter is all ones, "
            "so each output is its window's sum.",
            f"教程 003 的步幅例子：{out.zh}。像素 i 的值为 i，滤波器全为 1，"
            f"每个输出就是其窗口之和。",
        ),
        "003 · 步幅和填充",
        FIGURE,
        _conv(SEVEN, BOX_3X3, stride=stride, padding=padding),
    )


PRESETS: tuple[Preset, ...] = (
    Preset(
        "curve-detector",
        "conv",
        Text("Curve detector on the matching patch → 6600", "曲线检测器遇上相似的区域 → 6600"),
        Text(
            "Seed 003's 7×7 curve filter (depth ignored, as the seed does) over the receptive "
            "field it prints: 4 × (50 × 30) + (20 × 30) = 6600.",
            "教程 003 的 7×7 曲线滤波器（与原文一样只看一层深度）乘以原文给出的感受野："
            "4 × (50 × 30) + (20 × 30) = 6600。",
        ),
        "003 · 第一层——高层次角度",
        None,
        _conv([seed.CURVE_RECEPTIVE_FIELD], [[seed.CURVE_FILTER]]),
        (Highlight(0, 0, 0, Text("multiplication and summation", "相乘再求和")),),
    ),
    Preset(
        "curve-detector-image",
        "conv",
        Text(
            "Curve detector over a whole image: 6600 top-left, 0 top-right",
            "整张图：左上 6600，右上 0",
        ),
        Text(
            "The curve patch in the top-left corner and, built here because the seed only shows "
            "it as a picture, a stroke the filter does not respond to in the top-right corner. "
            "A 7×7 filter on 32×32 gives a 26×26 map ((32 − 7)/1 + 1; the seed says 28×28, "
            "carried over from its 5×5 example).",
            "左上角是曲线区域；右上角原文只有图片，这里构造了一个滤波器不响应的笔画。"
            "7×7 滤波器作用于 32×32 得到 26×26 的特征图（(32 − 7)/1 + 1；原文写 28×28，"
            "是沿用了 5×5 的例子）。",
        ),
        "003 · 第一层——高层次角度",
        FIGURE,
        _conv([seed.curve_image()], [[seed.CURVE_FILTER]]),
        (
            Highlight(0, 0, 0, Text("top-left: a curve", "左上：有曲线")),
            Highlight(0, 0, 25, Text("top-right: no curve", "右上：没有曲线")),
        ),
    ),
    Preset(
        "edge-detection",
        "conv",
        Text("Vertical edge detection: 8×8 → 6×6", "竖直边界检测：8×8 → 6×6"),
        Text(
            "Seed 002: an 8×8 image, bright left half, dark right half, and a 3×3 filter give a "
            "6×6 map that is bright along the edge. The seed's pixel values are a figure; this "
            "uses 10 and 0 and the filter [1 0 −1].",
            "教程 002：8×8 图片，左亮右暗，3×3 滤波器卷积后得到 6×6，中间亮的就是边界。"
            "原文像素值在图中，这里用 10 和 0，滤波器为 [1 0 −1]。",
        ),
        "002 · 一、引子：边界检测",
        FIGURE,
        _conv([seed.half_image()], [[seed.VERTICAL_EDGE_FILTER]]),
        (Highlight(0, 0, 2, Text("the edge", "边界")), Highlight(0, 0, 0, Text("flat", "平坦"))),
    ),
    Preset(
        "edge-detection-horizontal",
        "conv",
        Text("Horizontal edges: the filter turned by 90°", "水平边界：把滤波器旋转 90°"),
        Text(
            "Seed 002: turn the vertical filter by 90° to find horizontal edges.",
            "教程 002：把竖直边界的滤波器旋转 90° 就能检测水平边界。",
        ),
        "002 · 一、引子：边界检测",
        FIGURE,
        _conv([seed.half_image(vertical=False)], [[seed.HORIZONTAL_EDGE_FILTER]]),
        (Highlight(0, 2, 0, Text("the edge", "边界")),),
    ),
    Preset(
        "edge-same-padding",
        "conv",
        Text("'Same' padding: 8×8 → 10×10 → 8×8", "保持尺寸的填充：8×8 → 10×10 → 8×8"),
        Text(
            "Seed 002: pad the 8×8 image to 10×10 and the 3×3 filter gives 8×8 again.",
            "教程 002：把 8×8 补成 10×10，经过 3×3 滤波器后仍是 8×8。",
        ),
        "002 · 二、1.padding 填白",
        FIGURE,
        _conv([seed.half_image()], [[seed.VERTICAL_EDGE_FILTER]], padding="same"),
    ),
    Preset(
        "edge-stride-2",
        "conv",
        Text("8×8, 3×3, stride 2 → 3×3 (rounded down)", "8×8、3×3、步幅 2 → 3×3（向下取整）"),
        Text(
            "Seed 002: (8 − 3)/2 + 1 = 3.5 does not divide; frameworks round down to 3×3.",
            "教程 002：(8 − 3)/2 + 1 = 3.5 除不断，框架向下取整得 3×3。",
        ),
        "002 · 二、2.stride 步长",
        FIGURE,
        _conv([seed.half_image()], [[seed.VERTICAL_EDGE_FILTER]], stride=2, fit="floor"),
    ),
    _seven("stride-1", 1, 0, Text("the output is 5×5", "输出为 5×5"), "7×7 输入、3×3、步幅 1"),
    _seven("stride-2", 2, 0, Text("the output is 3×3", "输出为 3×3"), "7×7 输入、3×3、步幅 2"),
    _seven(
        "stride-3",
        3,
        0,
        Text(
            "(7 − 3)/3 + 1 = 2.33… is not whole: it does not fit",
            "(7 − 3)/3 + 1 = 2.33… 不是整数：放不下",
        ),
        "7×7 输入、3×3、步幅 3",
    ),
    _seven(
        "stride-1-same",
        1,
        "same",
        Text("padding (K − 1)/2 = 1 keeps 7×7", "填充 (K − 1)/2 = 1 保持 7×7"),
        "7×7 输入、3×3、步幅 1、填充 1",
    ),
    Preset(
        "rgb-one-filter",
        "conv",
        Text("5×5×3 filter over 32×32×3 → 28×28×1", "5×5×3 滤波器作用于 32×32×3 → 28×28×1"),
        Text(
            "Seed 003: 75 products per position, 784 positions, a 28×28 activation map. The "
            "seed's pixels are a photo; these are deterministic values 0–255.",
            "教程 003：每个位置 75 个乘积，784 个位置，得到 28×28 的特征图。"
            "原文像素是照片，这里用确定的 0–255 数值。",
        ),
        "003 · 第一层——数学部分",
        FIGURE,
        _conv(RGB_32, seed.filter_bank(3, 1, 5)),
    ),
    Preset(
        "rgb-two-filters",
        "conv",
        Text("Two 5×5×3 filters → 28×28×2", "两个 5×5×3 滤波器 → 28×28×2"),
        Text("Seed 003: each filter adds one map.", "教程 003：每个滤波器多出一张特征图。"),
        "003 · 第一层——数学部分",
        FIGURE,
        _conv(RGB_32, seed.filter_bank(3, 2, 5)),
    ),
    Preset(
        "rgb-padding-2",
        "conv",
        Text("Zero padding 2: 36×36×3 in, 32×32×3 out", "零填充 2：输入 36×36×3，输出 32×32×3"),
        Text(
            "Seed 003: pad 32×32×3 by 2 (36×36×3) and three 5×5×3 filters at stride 1 keep "
            "32×32×3.",
            "教程 003：32×32×3 四周补两圈零（36×36×3），三个 5×5×3 滤波器、步幅 1，"
            "输出仍为 32×32×3。",
        ),
        "003 · 步幅和填充",
        FIGURE,
        _conv(RGB_32, seed.filter_bank(3, 3, 5), padding=2),
    ),
    Preset(
        "multichannel",
        "conv",
        Text("8×8×3 input, four 3×3×3 filters → 6×6×4", "8×8×3 输入，4 个 3×3×3 滤波器 → 6×6×4"),
        Text(
            "Seed 002: a filter is as deep as the input, so each output sums 27 products; four "
            "filters stack four 6×6 maps (W1 has shape (3, 3, 3, 4)). Values are equivalent.",
            "教程 002：滤波器的深度与输入一致，每个输出是 27 个乘积之和；4 个滤波器叠成 6×6×4"
            "（W1 形状为 (3,3,3,4)）。数值为构造的等价例子。",
        ),
        "002 · 二、4.对多通道图片的卷积",
        FIGURE,
        _conv(RGB_8, seed.filter_bank(3, 4, 3), bias=[0.0, 1.0, -1.0, 0.5]),
    ),
    Preset(
        "local-connection",
        "conv",
        Text(
            "2×2 filter on 4×4: y0 = x0·w1 + x1·w2 + x4·w3 + x5·w4 + b0",
            "2×2 滤波器：y0 的线性组合",
        ),
        Text(
            "Seed 003: nodes 0, 1, 4, 5 connect to output 0 through w1…w4 plus b0; 4×4 becomes "
            "3×3. Pixel i holds i; w = (1, 2, 3, 4), b0 = 1: y0 = 0 + 2 + 12 + 20 + 1 = 35.",
            "教程 003：节点 0、1、4、5 通过 w1…w4 与偏置 b0 连到输出 0；4×4 变为 3×3。"
            "像素 i 的值为 i；w = (1,2,3,4)，b0 = 1：y0 = 0 + 2 + 12 + 20 + 1 = 35。",
        ),
        "003 · 局部连接",
        SYMBOLIC,
        _conv([seed.numbered_grid(4, 4)], [[[[1.0, 2.0], [3.0, 4.0]]]], bias=[1.0]),
        (Highlight(0, 0, 0, Text("y0", "y0")),),
    ),
    Preset(
        "local-connection-rgb",
        "conv",
        Text("Depth 3: 12 inputs per output", "深度为 3：每个输出连 12 个输入"),
        Text(
            "Seed 003: with three channels the 2×2 filter reaches 2×2×3 = 12 nodes, each channel "
            "with its own weights (red, green, blue).",
            "教程 003：三个通道时 2×2 滤波器连到 2×2×3 = 12 个节点，每个通道有自己的权重。",
        ),
        "003 · Depth维的处理",
        SYMBOLIC,
        _conv(
            [seed.numbered_grid(4, 4, 16 * c) for c in range(3)],
            [[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [-1.0, -1.0]]]],
        ),
    ),
    Preset(
        "zero-padding",
        "conv",
        Text("4×4, zero padding 1, 3×3 filter → 4×4", "4×4、零填充 1、3×3 滤波器 → 4×4"),
        Text(
            "Seed 003: (4 + 2·1 − 3)/1 + 1 = 4 keeps the size.",
            "教程 003：(4 + 2·1 − 3)/1 + 1 = 4，保持原尺寸。",
        ),
        "003 · Zero padding",
        FIGURE,
        _conv([seed.numbered_grid(4, 4)], BOX_3X3, padding=1),
    ),
    Preset(
        "hengzhe",
        "conv",
        Text("横折 detector: the stroke scores 3", "横折检测：命中处为 3"),
        Text(
            "Seed 003's 4×4 横折 in the middle and a 2×2 filter shaped like it: of the 3×3 map "
            "only the centre reaches 3. The seed's filter is a figure; this one is equivalent.",
            "教程 003 中间的 4×4 横折和一个形状相同的 2×2 滤波器：3×3 的特征图里只有中心为 3。"
            "原文滤波器在图中，这里是等价构造。",
        ),
        "003 · Max pooling",
        FIGURE,
        _conv([seed.HENGZHE_CENTRE], [[seed.HENGZHE_FILTER]]),
        (Highlight(0, 1, 1, Text("the 横折", "横折")),),
    ),
    Preset(
        "hengzhe-corner",
        "conv",
        Text("Same filter, 横折 in the corner: still 3", "同一个滤波器，横折在右下角：仍为 3"),
        Text(
            "Shared weights find the stroke wherever it is, which the fully connected network "
            "trained on the centre could not (seed 003).",
            "权重共享让滤波器在任何位置都能找到横折，"
            "而只在中间训练过的全连接网络做不到（教程 003）。",
        ),
        "003 · 图片识别--卷积神经网络",
        FIGURE,
        _conv([seed.HENGZHE_CORNER], [[seed.HENGZHE_FILTER]]),
        (Highlight(0, 2, 2, Text("the 横折", "横折")),),
    ),
    Preset(
        "hengzhe-max-pool",
        "pool",
        Text("3×3 max pooling keeps the 3", "3×3 最大池化保留 3"),
        Text(
            "Seed 003: 3×3 max pooling of the 3×3 feature map keeps only the useful node, 3.",
            "教程 003：对 3×3 特征图做 3×3 最大池化，只保留有用的节点 3。",
        ),
        "003 · Max pooling",
        FIGURE,
        {"input": [seed.HENGZHE_FEATURE_MAP], "kind": "max", "kernel_size": 3},
        (Highlight(0, 0, 0, Text("the 横折 survives", "横折被保留")),),
    ),
    Preset(
        "max-pool",
        "pool",
        Text("2×2 max pooling, stride 2", "2×2 最大池化，步幅 2"),
        Text(
            "Seeds 002 and 003: keep the largest value of each 2×2 block; a quarter of the values "
            "remain. The seeds' figure is the CS231n example used here.",
            "教程 002、003：每个 2×2 块只取最大值，只剩四分之一。原图即此处使用的 CS231n 例子。",
        ),
        "002 · 二、3.pooling 池化",
        FIGURE,
        {"input": [seed.MAX_POOL_INPUT], "kind": "max", "kernel_size": 2},
    ),
    Preset(
        "avg-pool",
        "pool",
        Text("2×2 average pooling, stride 2", "2×2 平均池化，步幅 2"),
        Text("Seed 002: the same blocks, averaged.", "教程 002：同样的块，取平均值。"),
        "002 · 二、3.pooling 池化",
        FIGURE,
        {"input": [seed.MAX_POOL_INPUT], "kind": "avg", "kernel_size": 2},
    ),
    Preset(
        "relu",
        "relu",
        Text("ReLU: f(x) = max(0, x)", "ReLU：f(x) = max(0, x)"),
        Text(
            "Seed 003: every negative activation becomes 0; the field of view does not change.",
            "教程 003：所有负的激活都变为 0，感受野不变。",
        ),
        "003 · ReLU（修正线性单元）层",
        SYMBOLIC,
        {"input": [seed.SIGNED_MAP]},
    ),
    Preset(
        "one-by-one",
        "conv",
        Text("1×1 convolution: depth 3 → 2", "1×1 卷积：深度 3 → 2"),
        Text(
            "Seed 003: a 1×1 filter mixes the channels of each pixel; 2 filters lower the depth "
            "from 3 to 2 (4 filters would raise it).",
            "教程 003：1×1 滤波器在每个像素上组合各通道；"
            "2 个滤波器把深度从 3 降到 2（4 个则升维）。",
        ),
        "003 · 1x1卷积核",
        SYMBOLIC,
        _conv(
            [seed.numbered_grid(4, 4, 16 * c) for c in range(3)],
            [[[[1.0]], [[0.0]], [[-1.0]]], [[[0.5]], [[0.5]], [[0.5]]]],
        ),
    ),
    Preset(
        "im2col",
        "im2col",
        Text("im2col: 8×8×3 and 4 filters as one matrix product", "im2col：一次矩阵乘法完成卷积"),
        Text(
            "Seed 003: W_row (K × F·F·D₁ = 4 × 27) · X_col (F·F·D₁ × W₂·H₂ = 27 × 36) = 4 × 36, "
            "reshaped to 6×6×4, equal to the sliding computation.",
            "教程 003：W_row（K × F·F·D₁ = 4 × 27）· X_col（F·F·D₁ × W₂·H₂ = 27 × 36）= 4 × 36，"
            "整理成 6×6×4，与逐步滑动的结果相同。",
        ),
        "003 · 矩阵乘法执行卷积",
        SYMBOLIC,
        _conv(RGB_8, seed.filter_bank(3, 4, 3), bias=[0.0, 1.0, -1.0, 0.5]),
    ),
)

PRESET_INDEX: dict[str, Preset] = {preset.slug: preset for preset in PRESETS}
