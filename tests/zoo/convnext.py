"""ConvNeXt in the style of the official (facebookresearch) and torchvision code, tiny, for 3×32×32.

Tricky constructs kept on purpose: the stem is a 4×4 stride-4 "patchify" conv; ``LayerNorm2d`` is a
channels-first ``nn.LayerNorm`` subclass that permutes to NHWC, calls ``F.layer_norm`` and permutes
back; each block runs a depthwise 7×7 conv, then ``x.permute(0, 2, 3, 1)`` so its ``nn.LayerNorm``
and ``nn.Linear`` layers see channels last (their hooks get NHWC tensors), ``nn.GELU``, a layer
scale ``self.gamma * x`` by a bare ``nn.Parameter`` (random around 0.5, not 1e-6, so the branch
matters), ``x.permute(0, 3, 1, 2)`` and ``x = input + x``; downsampling is LayerNorm2d then a 2×2
stride-2 conv; the head is the functional ``x.mean([-2, -1])``, a LayerNorm and a Linear.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.empty(dim).uniform_(0.25, 0.75))

    def forward(self, x: Tensor) -> Tensor:
        input = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        x = input + x
        return x


class ConvNeXt(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        depths: tuple[int, ...] = (2, 1, 2),
        dims: tuple[int, ...] = (16, 32, 64),
    ) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0], eps=1e-6)
                )
            ]
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(dims[i], eps=1e-6),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(dim) for _ in range(depth)))
            for depth, dim in zip(depths, dims, strict=True)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        for downsample, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(downsample(x))
        return self.norm(x.mean([-2, -1]))  # global average pooling, (N, C, H, W) -> (N, C)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """Stages of [2, 1, 2] blocks at 16/32/64 channels on 8×8, 4×4 and 2×2 maps."""
    return seeded_eval(lambda: ConvNeXt(num_classes), seed)
