"""Bytes → image → model input tensor.

Decoding goes through an allowlist of formats with a pixel cap checked from the header (before any
pixel is decoded), EXIF orientation applied, the first frame of animations, and every Pillow mode
converted to 8-bit RGB or L with its real range preserved.
"""

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.mnist_preprocess import mnist_style

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
"""Leading bytes of the allowed formats: a file that starts like one but won't open is corrupt."""

MAX_ASPECT_RATIO = 4
"""Longer sides beyond this multiple of the shorter one are centre-cropped before resizing: the
centre crop discards them anyway, and resizing a 1×8000 strip to a 256-px short side would
allocate gigabytes."""


class ImageError(ValueError):
    """An upload that cannot become a model input; `code` is stable for API clients."""

    code = "invalid_image"


class EmptyImageError(ImageError):
    code = "empty_image"


class UnsupportedImageError(ImageError):
    code = "unsupported_image_type"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class CorruptImageError(ImageError):
    code = "corrupt_image"


@dataclass(frozen=True)
class PreprocessSpec:
    """How a model wants its input (from its spec).

    ``style`` "crop": shorter side resized to ``resize``, centre crop; "digit": MNIST-style (ink
    box scaled into 20×20, centred by its centre of mass in 28×28, white ink on black).
    """

    style: Literal["crop", "digit"]
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bicubic"


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode upload bytes into an upright 8-bit RGB or L image (first frame of animations).

    Raises:
        EmptyImageError: no bytes.
        UnsupportedImageError: not one of PNG, JPEG, GIF, WEBP, BMP.
        ImageTooLargeError: more than `max_pixels` pixels (checked from the header).
        CorruptImageError: truncated or otherwise undecodable data.
    """
    if not data:
        raise EmptyImageError("the uploaded file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as error:
        if _has_allowed_signature(data):
            raise CorruptImageError("the image header is truncated or invalid") from error
        raise UnsupportedImageError(
            "not a supported image: upload a PNG, JPEG, GIF, WEBP or BMP file"
        ) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLargeError(f"the image has too many pixels (limit {max_pixels:,})") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImageError(f"the image could not be read: {error}") from error
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
        )
    try:
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        return to_8bit(image)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise CorruptImageError(f"the image data is truncated or corrupt: {error}") from error


def _has_allowed_signature(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _composite_on_white(image: Image.Image) -> Image.Image:
    # Premultiplied grey ("La") converts only to "LA" in Pillow; everything else goes to RGBA.
    rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float gray → 8-bit L, keeping the image's own range visible."""
    values = np.asarray(image, dtype=np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif values.size and values.min() >= 0 and values.max() <= 255:
        scaled = values
    elif values.size and values.min() >= 0 and values.max() <= 65535 and image.mode == "I":
        scaled = values / 257.0
    else:
        lo, hi = (values.min(), values.max()) if values.size else (0.0, 0.0)
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def to_8bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode → "RGB" or "L"; transparency is composited onto white (paper, not black)."""
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "1", "L", "RGB") and "transparency" in image.info
    ):
        return _composite_on_white(image)
    if mode in ("RGB", "L"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _wide_to_l(image)
    return image.convert("RGB")


RESAMPLING = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def crop_tensor(image: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """Resize the shorter side to `spec.resize`, centre-crop to the input size, normalise → (C, H, W)."""
    mode = "RGB" if spec.channels == 3 else "L"
    converted = _crop_to_aspect(image, MAX_ASPECT_RATIO).convert(mode)
    short = spec.resize or min(spec.height, spec.width)
    width, height = converted.size
    scale = short / min(width, height)
    new_size = (max(spec.width, round(width * scale)), max(spec.height, round(height * scale)))
    resized = converted.resize(new_size, RESAMPLING[spec.interpolation])
    left = (new_size[0] - spec.width) // 2
    top = (new_size[1] - spec.height) // 2
    crop = resized.crop((left, top, left + spec.width, top + spec.height))
    pixels = np.asarray(crop, dtype=np.float32).reshape(spec.height, spec.width, -1) / 255.0
    return normalize(torch.from_numpy(pixels).permute(2, 0, 1), spec)


def _crop_to_aspect(image: Image.Image, max_ratio: int) -> Image.Image:
    """Centre-crop the longer side to at most `max_ratio` times the shorter one."""
    width, height = image.size
    limit = max_ratio * min(width, height)
    if max(width, height) <= limit:
        return image
    kept_width, kept_height = min(width, limit), min(height, limit)
    left, top = (width - kept_width) // 2, (height - kept_height) // 2
    return image.crop((left, top, left + kept_width, top + kept_height))


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


def to_model_input(image: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """The (C, H, W) float32 tensor the model consumes for this decoded image."""
    if spec.style == "digit":
        digit = torch.from_numpy(np.ascontiguousarray(mnist_style(image), dtype=np.float32))
        return normalize(digit.unsqueeze(0), spec)
    return crop_tensor(image, spec)
