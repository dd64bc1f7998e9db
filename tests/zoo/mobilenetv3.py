"""MobileNetV3 in torchvision's style (inverted residuals, squeeze-excitation), small, for 3×32×32.

Tricky constructs kept on purpose: ``SqueezeExcitation`` is functional inside
(``F.adaptive_avg_pool2d``, then ``F.hardsigmoid(scale, inplace=True)``, which overwrites ``fc2``'s
output) and returns ``scale * x``, a broadcast product no module produces; ``result += input`` adds
the residual in place onto the projection BN's output; every ``Conv-BN-act`` uses an in-place
``nn.Hardswish`` or ``nn.ReLU``; depthwise convs (groups = channels) of 3×3 and 5×5; a first block
without an expansion conv; and a classifier ``Linear → Hardswish → Dropout → Linear`` after
``nn.AdaptiveAvgPool2d(1)``.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)

Activation = Callable[..., nn.Module]


class BlockConfig(NamedTuple):
    """One inverted residual, like torchvision's ``InvertedResidualConfig``."""

    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    activation: Activation
    stride: int


BLOCKS = [
    BlockConfig(3, 16, 16, True, nn.ReLU, 2),
    BlockConfig(3, 48, 24, False, nn.ReLU, 2),
    BlockConfig(3, 64, 24, False, nn.ReLU, 1),
    BlockConfig(5, 72, 40, True, nn.Hardswish, 1),
    BlockConfig(5, 120, 40, True, nn.Hardswish, 1),
]


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: Activation | None = nn.Hardswish,
) -> nn.Sequential:
    """Conv (no bias, "same" padding) → BN → in-place activation, like ``Conv2dNormActivation``."""
    padding = (kernel_size - 1) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.01),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, input_channels: int, squeeze_factor: int = 4) -> None:
        super().__init__()
        squeeze_channels = max(8, input_channels // squeeze_factor)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)

    def _scale(self, x: Tensor) -> Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = self.fc1(scale)
        scale = self.relu(scale)
        scale = self.fc2(scale)
        return F.hardsigmoid(scale, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        scale = self._scale(x)
        return scale * x


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, cnf: BlockConfig) -> None:
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and in_channels == cnf.out_channels
        expanded = cnf.expanded_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_bn_act(in_channels, expanded, 1, activation=cnf.activation))
        layers.append(
            conv_bn_act(expanded, expanded, cnf.kernel, cnf.stride, expanded, cnf.activation)
        )
        if cnf.use_se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(conv_bn_act(expanded, cnf.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result += input
        return result


class MobileNetV3(nn.Module):
    def __init__(
        self, num_classes: int = 10, last_channel: int = 128, dropout: float = 0.2
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 16, 3, stride=2)]
        in_channels = 16
        for cnf in BLOCKS:
            layers.append(InvertedResidual(in_channels, cnf))
            in_channels = cnf.out_channels
        layers.append(conv_bn_act(in_channels, 6 * in_channels, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * in_channels, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """Stem (stride 2), five inverted residuals (two with stride 2), a 1×1 conv to 240 channels."""
    return seeded_eval(lambda: MobileNetV3(num_classes), seed)
