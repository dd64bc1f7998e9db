"""SqueezeNet 1.1 in torchvision's style, at a quarter of the width, for 3×50×50 inputs.

Tricky constructs kept on purpose: Fire modules (squeeze 1×1, then expand 1×1 and 3×3 side by side,
each with its own ``nn.ReLU(inplace=True)``, joined by ``torch.cat``);
``nn.MaxPool2d(3, 2, ceil_mode=True)``, whose last window hangs over the edge at every pool here (24
→ 12, 12 → 6, 6 → 3 rather than 11, 5, 2); an unpadded stride-2 3×3 stem conv: on 50×50 its 24
windows start at rows 0, 2, …, 46 and cover rows 0–48, so the last row and the last column (index
49) of the image are never seen; no norms at all; and a conv "classifier" (dropout, 1×1 conv to
classes, ReLU, global average pool) followed by ``torch.flatten(x, 1)``, so the logits are never
negative.
"""

import torch
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 50, 50)


class Fire(nn.Module):
    def __init__(
        self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            1,
        )


class SqueezeNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(16, 4, 16, 16),
            Fire(32, 4, 16, 16),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(32, 8, 32, 32),
            Fire(64, 8, 32, 32),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 12, 48, 48),
            Fire(96, 12, 48, 48),
            Fire(96, 16, 64, 64),
            Fire(128, 16, 64, 64),
        )
        final_conv = nn.Conv2d(128, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """SqueezeNet 1.1's layer sequence with all channel counts divided by four."""
    return seeded_eval(lambda: SqueezeNet(num_classes), seed)
