"""ShuffleNetV2 in torchvision's style (channel split, two branches, channel shuffle), for 3×32×32.

Tricky constructs kept on purpose: stride-1 units split their input with ``x.chunk(2, dim=1)``, pass
the first half through untouched and join ``torch.cat((x1, self.branch2(x2)), dim=1)``, so half the
output channels are a copy of the input; stride-2 units run ``branch1`` (depthwise 3×3 stride 2 →
1×1) beside ``branch2``, while stride-1 units keep an empty ``nn.Sequential()`` as ``branch1`` that
never runs; every unit ends in ``channel_shuffle`` (view → transpose → contiguous → view), which
permutes channels without any module; depthwise convs have no activation; the head is the functional
``x.mean([2, 3])``.
"""

import torch
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


def depthwise_conv(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride, padding=1, groups=channels, bias=False)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise_conv(inp, stride),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            depthwise_conv(branch_features, stride),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(
        self,
        stages_repeats: tuple[int, ...] = (2, 2),
        stages_out_channels: tuple[int, ...] = (16, 32, 64, 128),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        input_channels = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, input_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(input_channels),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = nn.Sequential()
        for i, (repeats, output_channels) in enumerate(
            zip(stages_repeats, stages_out_channels[1:-1], strict=True)
        ):
            units = [InvertedResidual(input_channels, output_channels, 2)]
            units += [
                InvertedResidual(output_channels, output_channels, 1) for _ in range(repeats - 1)
            ]
            self.stages.add_module(f"stage{i + 2}", nn.Sequential(*units))
            input_channels = output_channels
        output_channels = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(output_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.maxpool(x)
        x = self.stages(x)
        x = self.conv5(x)
        x = x.mean([2, 3])  # global pool
        return self.fc(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """Stem to 8×8, two stages of two units (32 channels at 4×4, 64 at 2×2), 1×1 conv to 128."""
    return seeded_eval(lambda: ShuffleNetV2(num_classes=num_classes), seed)
