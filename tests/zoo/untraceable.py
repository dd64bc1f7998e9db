"""A small CNN whose forward branches on the data, as research and inference code often does.

``x.mean() > 0`` decides, in Python, which of two valid branches runs, so
``torch.fx.symbolic_trace`` fails (a traced tensor cannot decide Python control flow) while eager
forward runs normally: a tool that needs a static graph must fall back to observing what actually
ran. The two branches differ in receptive field (a plain 3×3 conv, or a 3×3 conv with dilation 2),
so which one ran matters. The decision is per batch: every image in a batch takes the branch its
batch's mean picks.
"""

import torch
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


class RoutedNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.bright = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.dark = nn.Sequential(nn.Conv2d(16, 32, 3, padding=2, dilation=2), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        bright = x.mean() > 0  # normalized inputs: brighter than mid-grey on average
        x = self.stem(x)
        x = self.bright(x) if bright else self.dark(x)  # a Python branch on a tensor's value
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """``RoutedNet``: a conv stem to 16×16, then the bright (3×3) or dark (dilated 3×3) branch."""
    return seeded_eval(lambda: RoutedNet(num_classes), seed)
