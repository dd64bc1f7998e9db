"""VGG in torchvision's style (``make_layers`` from a config list), shrunk for 3×32×32 inputs.

Tricky constructs kept on purpose: every conv in ``features`` is followed by
``nn.ReLU(inplace=True)``, which overwrites the conv's output tensor (a hook that keeps it without
cloning sees rectified values); the classifier reuses that pattern with ``nn.ReLU(True)`` between
``nn.Dropout`` layers (identities in eval); ``self.avgpool`` is an ``nn.AdaptiveAvgPool2d((2, 2))``
that really averages (4×4 → 2×2), and ``torch.flatten(x, 1)`` is functional.
"""

import torch
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)

CONFIG: list[int | str] = [16, "M", 32, "M", 64, 64, "M"]
"""Output channels of each 3×3 conv, with "M" for a 2×2 max pool (VGG-11's pattern, narrower)."""


def make_layers(config: list[int | str]) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in config:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
            layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(64 * 2 * 2, 128),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(128, 128),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """A VGG with five conv layers (16-M-32-M-64-64-M) and a three-layer classifier."""
    return seeded_eval(lambda: VGG(make_layers(CONFIG), num_classes), seed)
