"""Bytes → image → model input tensor: the torch end of decoding, and the way back to pixels.

Decoding and its checks live in `app.core.decode`, the pixels a model reads in `app.core.pixels`
(both without torch, so a decode worker process can run them); this module normalises those
pixels into the tensor the model consumes, and denormalises a tensor into what the network saw.
The names callers know from here (`decode_image`, the `ImageError` family, `PreprocessSpec`, …)
are re-exported.
"""

import numpy as np
import torch
from PIL import Image

from app.core.decode import (
    ALLOWED_FORMATS,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooComplexError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
)
from app.core.pixels import (
    MAX_ASPECT_RATIO,
    RESAMPLING,
    PreprocessSpec,
    crop_pixels,
    model_pixels,
    to_8bit,
    unit_range,
)

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_ASPECT_RATIO",
    "RESAMPLING",
    "CorruptImageError",
    "EmptyImageError",
    "ImageError",
    "ImageTooComplexError",
    "ImageTooLargeError",
    "PreprocessSpec",
    "UnsupportedImageError",
    "crop_tensor",
    "decode_image",
    "denormalize",
    "normalize",
    "to_8bit",
    "to_model_input",
]


def normalize(pixels: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """(C, H, W) values in [0, 1] → (x − mean) / std per channel."""
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
    return ((pixels - mean) / std).contiguous()


def denormalize(tensor: torch.Tensor, spec: PreprocessSpec) -> np.ndarray:
    """Model input (C, H, W) → uint8 image (H, W, 3) or (H, W): exactly what the network saw."""
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
    pixels = (tensor * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def input_from_pixels(pixels: np.ndarray, spec: PreprocessSpec) -> torch.Tensor:
    """`model_pixels` (uint8 levels, or float32 in [0, 1]) → the (C, H, W) float32 tensor the
    model consumes: the one way every path makes it, so stored pixels give it back to the bit."""
    return normalize(torch.from_numpy(unit_range(pixels)), spec)


def crop_tensor(image: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """Shorter side resized to `spec.resize`, centre-cropped to the input size, normalised."""
    return input_from_pixels(crop_pixels(image, spec), spec)


def to_model_input(image: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """The (C, H, W) float32 tensor the model consumes for this decoded image."""
    return input_from_pixels(model_pixels(image, spec), spec)
