"""ResNet in torchvision's style for 3×32×32 inputs: BasicBlock, and a ResNeXt-style Bottleneck.

Tricky constructs kept on purpose: the stem's ``nn.ReLU(inplace=True)`` overwrites ``bn1``'s output,
each block owns one in-place ``self.relu`` and calls it two (Bottleneck: three) times,
``out += identity`` adds in place onto the last BN's output, the downsample branch is
``Sequential(conv1x1, BN)``, and ``build_bottleneck`` has a grouped 3×3 conv (groups=4) and a last
stage whose stride 2 is replaced by dilation 2 (``replace_stride_with_dilation``), so its second
block's 3×3 conv is dilated.
"""

import torch
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """3×3 convolution whose padding equals its dilation ("same" size at stride 1)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride, dilation, dilation, groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if groups != 1 or dilation != 1:
            raise ValueError("BasicBlock only supports groups=1 and dilation=1")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        width = planes  # the grouped 3×3 conv's width: `groups` groups of planes/groups channels
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


Block = BasicBlock | Bottleneck


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[Block],
        layers: list[int],
        num_classes: int = 10,
        groups: int = 1,
        replace_stride_with_dilation: tuple[bool, bool] = (False, False),
    ) -> None:
        super().__init__()
        self.inplanes, self.dilation = 16, 1
        self.groups = groups
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 16, layers[0])
        self.layer2 = self._make_layer(block, 32, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 64, layers[2], 2, replace_stride_with_dilation[1])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64 * block.expansion, num_classes)

    def _make_layer(
        self, block: type[Block], planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, previous_dilation)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, dilation=self.dilation))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """A ResNet-14-style net: BasicBlock stages of [2, 2, 2] blocks, 16/32/64 channels."""
    return seeded_eval(lambda: ResNet(BasicBlock, [2, 2, 2], num_classes), seed)


def build_bottleneck(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """ResNeXt-style Bottleneck stages of [1, 1, 2] blocks, groups=4, the last stage dilated."""
    return seeded_eval(lambda: ResNet(Bottleneck, [1, 1, 2], num_classes, 4, (False, True)), seed)
