"""Inception in torchvision's GoogLeNet/Inception-v3 style (BasicConv2d, branch blocks), 3×64×64.

Tricky constructs kept on purpose: ``BasicConv2d`` is conv (no bias) → BN(eps=0.001) → the
functional ``F.relu(x, inplace=True)``, which overwrites the BN's output and fires no hook;
``InceptionA`` runs four branches side by side (1×1; 1×1 → 3×3; 1×1 → 5×5 with padding 2; the
functional ``F.max_pool2d(x, kernel_size=3, stride=1, padding=1)`` → 1×1) and joins them with
``torch.cat(outputs, 1)``; the reduction block ``InceptionB`` has unpadded stride-2 convs and an
unpadded stride-2 functional max pool on a 14×14 map (their windows cover rows 0–12 only: row 13
reaches the block's output through the padded 3×3 of the double branch alone), and the unpadded
stride-2 stem conv on 64×64 never sees the image's last row and column (index 63).
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 64, 64)


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.bn(x)
        return F.relu(x, inplace=True)


class InceptionA(nn.Module):
    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_features: int,
    ) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, ch3x3red, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1)
        self.branch5x5_1 = BasicConv2d(in_channels, ch5x5red, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(ch5x5red, ch5x5, kernel_size=5, padding=2)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(branch_pool)
        return [branch1x1, branch3x3, branch5x5, branch_pool]

    def forward(self, x: Tensor) -> Tensor:
        outputs = self._forward(x)
        return torch.cat(outputs, 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int, ch3x3: int, ch3x3dbl_red: int, ch3x3dbl: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, ch3x3, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, ch3x3dbl_red, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(ch3x3dbl_red, ch3x3dbl, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_1(x)
        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        branch3x3dbl = self.branch3x3dbl_3(branch3x3dbl)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        outputs = [branch3x3, branch3x3dbl, branch_pool]
        return torch.cat(outputs, 1)


class Inception(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 16, kernel_size=3, stride=2)  # 64 → 31
        self.Conv2d_2a_3x3 = BasicConv2d(16, 16, kernel_size=3)  # 31 → 29
        self.Conv2d_2b_3x3 = BasicConv2d(16, 32, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)  # 29 → 14
        self.Mixed_3a = InceptionA(32, 16, 16, 24, 4, 8, 8)  # 56 channels
        self.Mixed_4a = InceptionB(56, 32, 16, 24)  # 112 channels, 14 → 6
        self.Mixed_4b = InceptionA(112, 32, 24, 48, 8, 16, 16)  # 112 channels
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(112, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = self.maxpool1(x)
        x = self.Mixed_3a(x)
        x = self.Mixed_4a(x)
        x = self.Mixed_4b(x)
        x = self.avgpool(x)
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """Inception-v3-like stem, an Inception-v1 module, a v3 reduction, another v1 module."""
    return seeded_eval(lambda: Inception(num_classes), seed)
