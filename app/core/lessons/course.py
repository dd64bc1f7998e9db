"""The lessons, in the seeds' order: why convolution, the arithmetic, sizes, channels, ReLU and
pooling, im2col, and the architectures. Each step points at presets, parameter comparisons or
gallery networks to run, and at the live panel where the same arithmetic happens in a real model.
"""

from dataclasses import dataclass
from urllib.parse import urlencode

from app.core.lessons.text import Text

LENET = "lenet5-mnist"
EFFICIENTNET = "efficientnet-lite0"


@dataclass(frozen=True)
class LiveLink:
    """Where to see this on a real model: the model, the bundled sample it analyzes, the layer the
    step talks about, and what to look at there.

    The analyze page reads ``?model=&sample=&layer=`` (static/js/main.js): it picks the model,
    analyzes the sample (its file name without extension) and opens the layer.
    """

    model: str
    sample: str
    layer: str
    instruction: Text

    @property
    def href(self) -> str:
        return "/?" + urlencode({"model": self.model, "sample": self.sample, "layer": self.layer})


@dataclass(frozen=True)
class LessonStep:
    title: Text
    body: Text
    presets: tuple[str, ...] = ()
    comparisons: tuple[str, ...] = ()
    sizes: bool = False
    networks: tuple[str, ...] = ()
    live: LiveLink | None = None


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: Text
    summary: Text
    steps: tuple[LessonStep, ...]


_FILTERS_LIVE = LiveLink(
    LENET,
    "digit-7",
    "conv1",
    Text(
        "LeNet-5 reads a 7 with conv1 open: its 6 filters of 5×5 = 25 weights and 1 bias each "
        "are shared by all 28×28 positions (156 parameters).",
        "LeNet-5 识别一个 7，并打开 conv1：6 个 5×5 滤波器，每个 25 个权重加 1 个偏置，"
        "由全部 28×28 个位置共享（共 156 个参数）。",
    ),
)
_UNIT_LIVE = LiveLink(
    EFFICIENTNET,
    "chelsea",
    "_conv_stem",
    Text(
        "EfficientNet-Lite0 analyzes a photo with _conv_stem open: pick a unit and its value is "
        "this same sum of window × filter products (3×3×3 = 27 of them, then batch norm).",
        "EfficientNet-Lite0 分析一张照片，并打开 _conv_stem：点选一个单元，它的值就是同样的"
        "窗口 × 滤波器乘积之和（3×3×3 = 27 个，再做批归一化）。",
    ),
)
_STRIDE_LIVE = LiveLink(
    EFFICIENTNET,
    "chelsea",
    "_blocks.1._depthwise_conv",
    Text(
        "A real stride 2: _blocks.1._depthwise_conv slides its 3×3 filters two pixels at a time, "
        "so its 112×112 input gives 56×56 maps (padded so that the windows fit).",
        "真实模型里的步幅 2：_blocks.1._depthwise_conv 的 3×3 滤波器每次移动两个像素，"
        "112×112 的输入得到 56×56 的特征图（填充后窗口恰好放下）。",
    ),
)
_ONE_BY_ONE_LIVE = LiveLink(
    EFFICIENTNET,
    "chelsea",
    "_blocks.3._project_conv",
    Text(
        "_blocks.3._project_conv is a 1×1 convolution: 40 filters of 1×1×144 mix each pixel's 144 "
        "channels into 40 (144 × 40 = 5,760 weights).",
        "_blocks.3._project_conv 是 1×1 卷积：40 个 1×1×144 的滤波器把每个像素的 144 个通道"
        "组合成 40 个（144 × 40 = 5,760 个权重）。",
    ),
)
_POOL_LIVE = LiveLink(
    LENET,
    "digit-7",
    "pool1",
    Text(
        "LeNet-5 with pool1 open: compare its 6×14×14 maps with the 6×28×28 of relu1 before it.",
        "LeNet-5 打开 pool1：把它 6×14×14 的特征图与前一层 relu1 的 6×28×28 比较。",
    ),
)
_RF_LIVE = LiveLink(
    EFFICIENTNET,
    "chelsea",
    "_blocks.3",
    Text(
        "On EfficientNet-Lite0, _blocks.3 is open: a unit there sees a 35×35 pixel box of the "
        "photo. Move on to _blocks.15: its field is 851 pixels wide, more than the 224-pixel "
        "input, so the box covers the whole image.",
        "EfficientNet-Lite0 打开 _blocks.3：这里的一个单元看到照片上 35×35 像素的方框。"
        "再到 _blocks.15：感受野宽 851 像素，超过 224 像素的输入，方框覆盖整张图。",
    ),
)

LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "why-convolution",
        Text("1 · Why convolution", "1 · 为什么要卷积"),
        Text(
            "Fully connected layers on images need absurd numbers of weights and must relearn a "
            "shape at every position; local windows with shared weights fix both.",
            "全连接层处理图像需要天文数字的权重，而且同一形状换个位置就得重新学习；"
            "局部连接加权重共享同时解决这两个问题。",
        ),
        (
            LessonStep(
                Text("Count the weights", "数一数权重"),
                Text(
                    "A 1000×1000 image into 1000×1000 hidden units: 10¹² weights. Connect each "
                    "unit to a 10×10 window only: 10⁸. Let all units share that one window: 100.",
                    "1000×1000 的图像接 1000×1000 个隐藏单元：10¹² 个权重。每个单元只连 10×10 "
                    "的局部：10⁸。所有单元共享同一个窗口：100。",
                ),
                comparisons=("megapixel", "argb-100-kernels", "eight-by-eight", "mlp-32x32"),
                live=_FILTERS_LIVE,
            ),
            LessonStep(
                Text("The same 横折 anywhere", "横折在哪里都一样"),
                Text(
                    "A fully connected net trained on a 横折 in the middle only adjusts the "
                    "weights "
                    "of pixels 5, 6, 9, a and misses it in a corner. One shared 2×2 filter scores "
                    "3 wherever the stroke is.",
                    "只用中间的横折训练的全连接网络只调节 5、6、9、a 号像素的权重，"
                    "换到角落就认不出。"
                    "一个共享的 2×2 滤波器在任何位置都得 3。",
                ),
                presets=("hengzhe", "hengzhe-corner"),
            ),
        ),
    ),
    Lesson(
        "convolution",
        Text("2 · The convolution arithmetic", "2 · 卷积的计算"),
        Text(
            "Multiply the window by the filter, element by element, add up, add the bias; slide.",
            "窗口与滤波器逐元素相乘，求和，加偏置；然后滑动。",
        ),
        (
            LessonStep(
                Text("One output, four products", "一个输出，四个乘积"),
                Text(
                    "y0 = x0·w1 + x1·w2 + x4·w3 + x5·w4 + b0: the 2×2 window over pixels 0, 1, 4, "
                    "5. Step through the 3×3 outputs.",
                    "y0 = x0·w1 + x1·w2 + x4·w3 + x5·w4 + b0：2×2 窗口覆盖 0、1、4、5 号像素。"
                    "逐步查看 3×3 的输出。",
                ),
                presets=("local-connection",),
            ),
            LessonStep(
                Text("Edges from a 3×3 filter", "3×3 滤波器找边界"),
                Text(
                    "Bright left half, dark right half: [1 0 −1] answers 30 on the edge and 0 on "
                    "flat regions; turned by 90° it finds horizontal edges.",
                    "左亮右暗：[1 0 −1] 在边界处得 30，平坦处得 0；旋转 90° 就找水平边界。",
                ),
                presets=("edge-detection", "edge-detection-horizontal"),
            ),
            LessonStep(
                Text("5×5×3 over 32×32×3 → 28×28", "5×5×3 作用于 32×32×3 → 28×28"),
                Text(
                    "75 products per position, 784 positions, one 28×28 activation map; a second "
                    "filter adds a second map.",
                    "每个位置 75 个乘积，784 个位置，得到一张 28×28 的特征图；"
                    "第二个滤波器再加一张。",
                ),
                presets=("rgb-one-filter", "rgb-two-filters"),
                live=_UNIT_LIVE,
            ),
            LessonStep(
                Text("A curve detector: 6600 and 0", "曲线检测器：6600 与 0"),
                Text(
                    "Where the image looks like the filter's curve the sum is large (6600); where "
                    "it does not, it is 0.",
                    "图像与滤波器的曲线相似处和很大（6600）；不相似处为 0。",
                ),
                presets=("curve-detector", "curve-detector-image"),
            ),
        ),
    ),
    Lesson(
        "stride-and-padding",
        Text("3 · Stride, padding and the output size", "3 · 步幅、填充与输出尺寸"),
        Text(
            "O = (W − K + 2P)/S + 1, and what happens when it is not whole.",
            "O = (W − K + 2P)/S + 1，以及结果不是整数时会发生什么。",
        ),
        (
            LessonStep(
                Text("7×7 with a 3×3 filter", "7×7 与 3×3 滤波器"),
                Text(
                    "Stride 1: 5×5. Stride 2: 3×3. Stride 3: (7 − 3)/3 + 1 = 2.33…, the window "
                    "does not fit. Padding (K − 1)/2 = 1 keeps 7×7.",
                    "步幅 1：5×5。步幅 2：3×3。步幅 3：(7 − 3)/3 + 1 = 2.33…，放不下。"
                    "填充 (K − 1)/2 = 1 保持 7×7。",
                ),
                presets=("stride-1", "stride-2", "stride-3", "stride-1-same"),
                live=_STRIDE_LIVE,
            ),
            LessonStep(
                Text("Padding keeps the size", "填充保持尺寸"),
                Text(
                    "32×32×3 padded by 2 is 36×36×3 and gives 32×32×3; 8×8 padded to 10×10 gives "
                    "8×8 ('same'); 4×4 padded by 1 gives 4×4. Without padding the image shrinks "
                    "every layer and the border is seen less often.",
                    "32×32×3 补 2 圈为 36×36×3，输出 32×32×3；"
                    "8×8 补成 10×10 输出 8×8（保持尺寸的填充）；"
                    "4×4 补 1 圈输出 4×4。不填充则每层都缩小，边缘也被计算得更少。",
                ),
                presets=("rgb-padding-2", "edge-same-padding", "zero-padding", "edge-stride-2"),
                sizes=True,
            ),
        ),
    ),
    Lesson(
        "channels",
        Text("4 · Channels and many filters", "4 · 多通道与多个滤波器"),
        Text(
            "A filter is as deep as its input; each filter makes one map; the maps stack.",
            "滤波器与输入一样深；每个滤波器产生一张特征图；特征图叠在一起。",
        ),
        (
            LessonStep(
                Text("8×8×3 with four 3×3×3 filters → 6×6×4", "8×8×3 与 4 个 3×3×3 → 6×6×4"),
                Text(
                    "27 products per output; W1 has shape (3, 3, 3, 4).",
                    "每个输出 27 个乘积；W1 形状为 (3,3,3,4)。",
                ),
                presets=("multichannel", "local-connection-rgb"),
                comparisons=("filter-weights",),
            ),
            LessonStep(
                Text("1×1 convolutions change the depth", "1×1 卷积改变深度"),
                Text(
                    "A 1×1 filter mixes a pixel's channels: 2 filters take depth 3 to 2.",
                    "1×1 滤波器组合一个像素的各通道：2 个滤波器把深度 3 变为 2。",
                ),
                presets=("one-by-one",),
                live=_ONE_BY_ONE_LIVE,
            ),
        ),
    ),
    Lesson(
        "relu-and-pooling",
        Text("5 · ReLU and pooling", "5 · ReLU 与池化"),
        Text(
            "f(x) = max(0, x); keep the strongest answer of each block.",
            "f(x) = max(0, x)；池化只保留每个块中最强的响应。",
        ),
        (
            LessonStep(
                Text("ReLU", "ReLU"),
                Text("Negative activations become 0.", "负的激活变为 0。"),
                presets=("relu",),
            ),
            LessonStep(
                Text("Max and average pooling", "最大池化与平均池化"),
                Text(
                    "2×2 windows, stride 2: a quarter of the values remain. On the 横折 map a 3×3 "
                    "max pool keeps exactly the useful 3.",
                    "2×2 窗口、步幅 2：只剩四分之一。对横折的特征图做 3×3 最大池化，恰好保留有用的 "
                    "3。",
                ),
                presets=("max-pool", "avg-pool", "hengzhe-max-pool"),
                live=_POOL_LIVE,
            ),
        ),
    ),
    Lesson(
        "im2col",
        Text("6 · Convolution as one matrix product", "6 · 用矩阵乘法执行卷积"),
        Text(
            "Every window becomes a column; every filter a row; one product does it all.",
            "每个窗口展成一列，每个滤波器展成一行，一次乘法完成全部计算。",
        ),
        (
            LessonStep(
                Text("W_row · X_col", "W_row · X_col"),
                Text(
                    "W_row ∈ R^(K × F·F·D₁), X_col ∈ R^(F·F·D₁ × W₂·H₂), W_row · X_col ∈ "
                    "R^(K × W₂·H₂): here 4 × 27 times 27 × 36.",
                    "W_row ∈ R^(K × F·F·D₁)，X_col ∈ R^(F·F·D₁ × W₂·H₂)，乘积 ∈ R^(K × W₂·H₂)："
                    "此处为 4 × 27 乘 27 × 36。",
                ),
                presets=("im2col",),
            ),
        ),
    ),
    Lesson(
        "architectures",
        Text("7 · From LeNet to DenseNet", "7 · 从 LeNet 到 DenseNet"),
        Text(
            "Smaller filters, fewer fully connected weights, Inception, skip connections.",
            "更小的滤波器、更少的全连接参数、Inception、跳跃连接。",
        ),
        (
            LessonStep(
                Text("The lineage", "结构发展"),
                Text(
                    "LeNet, AlexNet, ZFNet, VGG, GoogLeNet, ResNet, DenseNet: open each one's "
                    "layer table and watch the receptive field grow with depth.",
                    "LeNet、AlexNet、ZF Net、VGG、GoogLeNet、ResNet、DenseNet：打开各自的层表，"
                    "看感受野随深度增长。",
                ),
                networks=(
                    "lenet5",
                    "alexnet",
                    "zfnet",
                    "vgg16",
                    "googlenet",
                    "resnet50",
                    "densenet121",
                ),
                live=_RF_LIVE,
            ),
        ),
    ),
)

LESSON_INDEX: dict[str, Lesson] = {lesson.slug: lesson for lesson in LESSONS}
