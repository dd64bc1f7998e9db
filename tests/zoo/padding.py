"""A plain-looking net that exercises every padding kind and many odd layers, for 3×32×32 inputs.

No single real model has all of these; each is common somewhere (StyleGAN/pix2pix-style reflect
padding, circular padding in periodic-domain models, TF-"same" asymmetric padding ported to PyTorch,
DeepLab-style dilation, grouped convs, GroupNorm). Tricky constructs: ``padding_mode="reflect"``,
``"circular"`` and ``"replicate"`` convs; ``F.pad(x, (1, 2, 1, 2))`` (constant zero, one more on the
right/bottom) before an unpadded 4×4 conv; ``F.pad(x, (1, 1, 1, 1), mode="reflect")`` before an
unpadded grouped conv (groups=2); a dilated conv (dilation=2); GroupNorm;
``MaxPool2d(3, 2, padding=1, ceil_mode=True)`` (32 → 17, not 16);
``AvgPool2d(3, 2, padding=1, count_include_pad=False)``; gating products no module produces
(``x * hardsigmoid(conv(x))`` per channel, ``x * sigmoid(conv(x))`` per pixel); and eight activation
kinds: LeakyReLU(0.1), ELU, SiLU, Tanh, GELU, ReLU6, Hardsigmoid, Sigmoid.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


class PaddingNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv_reflect = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.norm1 = nn.GroupNorm(2, 8)
        self.act1 = nn.LeakyReLU(0.1)
        self.conv_circular = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular")
        self.act2 = nn.ELU()
        self.conv_asymmetric = nn.Conv2d(8, 16, 4)  # after F.pad (1, 2, 1, 2): 35 → 32
        self.act3 = nn.SiLU()
        self.pool_ceil = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)  # 32 → 17
        self.conv_dilated = nn.Conv2d(16, 16, 3, padding=2, dilation=2)
        self.norm2 = nn.GroupNorm(4, 16)
        self.act4 = nn.Tanh()
        self.conv_grouped = nn.Conv2d(16, 16, 3, groups=2)  # after reflect F.pad: 19 → 17
        self.act5 = nn.GELU()
        self.pool_avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)  # 17 → 9
        self.conv_replicate = nn.Conv2d(16, 24, 3, padding=1, padding_mode="replicate")
        self.act6 = nn.ReLU6()
        self.channel_gate = nn.Conv2d(24, 24, 1)
        self.channel_gate_act = nn.Hardsigmoid()
        self.pixel_gate = nn.Conv2d(24, 1, 1)
        self.pixel_gate_act = nn.Sigmoid()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.norm1(self.conv_reflect(x)))
        x = self.act2(self.conv_circular(x))
        x = F.pad(x, (1, 2, 1, 2))
        x = self.act3(self.conv_asymmetric(x))
        x = self.pool_ceil(x)
        x = self.act4(self.norm2(self.conv_dilated(x)))
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        x = self.act5(self.conv_grouped(x))
        x = self.pool_avg(x)
        x = self.act6(self.conv_replicate(x))
        x = x * self.channel_gate_act(self.channel_gate(x))
        x = x * self.pixel_gate_act(self.pixel_gate(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """``PaddingNet``: 32×32 → 17×17 → 9×9 feature maps, 24 channels into the classifier."""
    return seeded_eval(lambda: PaddingNet(num_classes), seed)
