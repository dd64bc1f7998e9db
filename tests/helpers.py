"""Small shared builders for core tests: a seeded toy CNN and in-memory image files."""

import dataclasses
import io
from collections.abc import Sequence

import pytest
import torch
from PIL import Image
from torch import nn

from app.core.analysis import LayerStats

TINY_INPUT_SHAPE = (3, 8, 8)
TINY_CLASSES = 5


class ResidualBlock(nn.Module):
    """conv → relu, added back onto its input: the smallest "block" the visualizer shows."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.relu(self.conv(x))


class TinyCNN(nn.Module):
    """conv → bn → relu → pool → residual block → flatten → linear on (3, 8, 8) inputs."""

    def __init__(self, num_classes: int = TINY_CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.block = ResidualBlock(4)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.block(self.features(x))))


def tiny_cnn(seed: int = 0) -> TinyCNN:
    """A TinyCNN in eval mode with seeded weights and non-trivial batch-norm statistics."""
    generator = torch.Generator().manual_seed(seed)
    model = TinyCNN()
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 4
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(noise / fan_in**0.5)  # keeps every layer's outputs of order 1
        batchnorm = model.features[1]
        batchnorm.running_mean.copy_(torch.randn(4, generator=generator) * 0.2)
        batchnorm.running_var.copy_(torch.rand(4, generator=generator) + 0.5)
    return model.eval()


def tiny_inputs(count: int, seed: int = 1) -> torch.Tensor:
    """`count` seeded (3, 8, 8) inputs stacked as a batch."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((count, *TINY_INPUT_SHAPE), generator=generator)


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    """The bytes of `image` saved in `image_format` (what an upload would contain)."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    """Open PNG bytes, insisting they really are a PNG."""
    image = Image.open(io.BytesIO(data), formats=("PNG",))
    image.load()
    return image


def assert_same_statistics(tapped: Sequence[LayerStats], copied: Sequence[LayerStats]) -> None:
    """Layer statistics summarized at the taps equal those of the kept maps: exactly but for the
    mean, whose float32 sum runs in the tap's memory order (a channels-last value's sum adds its
    numbers in another order than the contiguous (C, H, W) copy's): equal to float32 rounding,
    at most 1e-5 of the largest magnitude."""
    assert len(tapped) == len(copied)
    for tap, copy in zip(tapped, copied, strict=True):
        scale = max(abs(copy.min), abs(copy.max))
        assert tap.mean == pytest.approx(copy.mean, rel=1e-6, abs=1e-5 * scale), copy
        assert dataclasses.replace(tap, mean=copy.mean) == copy
