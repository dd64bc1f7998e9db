"""A decoded image → the pixels a model reads: 8-bit RGB or L, resized and cropped, in [0, 1].

Pillow and numpy only (a decode worker process runs this; torch normalises afterwards). Every
Pillow mode becomes 8-bit RGB or L with its real range preserved and transparency composited onto
white; conversions that need wide working copies go strip by strip, so they cost a few MB
whatever the image's size.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
from PIL import Image

from app.core.mnist_preprocess import mnist_style

MAX_ASPECT_RATIO = 4
"""Longer sides beyond this multiple of the shorter one are centre-cropped before resizing: the
centre crop discards them anyway, and resizing a 1×8000 strip to a 256-px short side would
allocate gigabytes."""

STRIP_PIXELS = 1 << 20
"""Conversions that need float or RGBA working copies run over strips of rows of about this many
pixels, so their extra memory is a few MB whatever the image's size (a 6300² 16-bit PNG took
1.3 GB converted at once)."""


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

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Self:
        """The spec `dataclasses.asdict` gave, back from JSON (which made its tuples lists)."""
        return cls(**{**fields, "mean": tuple(fields["mean"]), "std": tuple(fields["std"])})


def eight_bit_mode(image: Image.Image) -> Literal["RGB", "L"] | None:
    """The mode `to_8bit` converts `image` to, or None when it is kept as it is."""
    mode = image.mode
    if _has_transparency(image):
        return "RGB"
    if mode in ("RGB", "L"):
        return None
    return "L" if mode in ("1", "I", "F") or mode.startswith("I;16") else "RGB"


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "1", "L", "RGB") and "transparency" in image.info
    )


def _strip_rows(image: Image.Image) -> int:
    return max(1, STRIP_PIXELS // max(image.width, 1))


def _strips(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """(top row, strip) covering the image from top to bottom."""
    width, height = image.size
    rows = _strip_rows(image)
    for top in range(0, height, rows):
        yield top, image.crop((0, top, width, min(top + rows, height)))


def _by_strips(
    image: Image.Image, mode: str, convert: Callable[[Image.Image], Image.Image]
) -> Image.Image:
    """`convert` applied strip by strip, pasted into one image of `mode`."""
    if _strip_rows(image) >= image.height:
        return convert(image)
    result = Image.new(mode, image.size)
    for top, strip in _strips(image):
        result.paste(convert(strip), (0, top))
    return result


def _composite_on_white(image: Image.Image) -> Image.Image:
    # Premultiplied grey ("La") converts only to "LA" in Pillow; everything else goes to RGBA.
    rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _finite(image: Image.Image) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    return np.where(np.isfinite(values), values, 0.0)


def _wide_scaling(image: Image.Image) -> Callable[[np.ndarray], np.ndarray]:
    """How 16/32-bit grey values map to 0…255 for this image (one pass over it for its range)."""
    if image.mode.startswith("I;16"):
        return lambda values: values / 257.0
    finite = (_finite(strip) for _, strip in _strips(image))
    extremes = [(values.min(), values.max()) for values in finite if values.size]
    lo = min((low for low, _ in extremes), default=0.0)
    hi = max((high for _, high in extremes), default=0.0)
    if lo >= 0 and hi <= 255:
        return lambda values: values
    if lo >= 0 and hi <= 65535 and image.mode == "I":
        return lambda values: values / 257.0
    if hi > lo:
        return lambda values: (values - lo) * (255.0 / (hi - lo))
    return np.zeros_like


def _wide_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float grey → 8-bit L, keeping the image's own range visible."""
    scale = _wide_scaling(image)

    def to_l(strip: Image.Image) -> Image.Image:
        levels = np.clip(np.rint(scale(_finite(strip))), 0, 255).astype(np.uint8)
        return Image.fromarray(levels, mode="L")

    return _by_strips(image, "L", to_l)


def to_8bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode → "RGB" or "L"; transparency is composited onto white (paper, not black)."""
    target = eight_bit_mode(image)
    if target is None:
        return image
    if _has_transparency(image):
        return _by_strips(image, "RGB", _composite_on_white)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _wide_to_l(image)
    return image.convert(target)


RESAMPLING = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def crop_pixels(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """Shorter side resized to `spec.resize`, centre crop: uint8 (C, H, W) levels 0…255.

    Grey images are resized before they become RGB (resampling treats the three equal channels
    alike, so the values are the same, for a third of the memory).
    """
    mode = "RGB" if spec.channels == 3 else "L"
    source = _crop_to_aspect(image, MAX_ASPECT_RATIO)
    if source.mode != mode and (source.mode, mode) != ("L", "RGB"):
        source = source.convert(mode)
    short = spec.resize or min(spec.height, spec.width)
    width, height = source.size
    scale = short / min(width, height)
    new_size = (max(spec.width, round(width * scale)), max(spec.height, round(height * scale)))
    resized = source.resize(new_size, RESAMPLING[spec.interpolation])
    left = (new_size[0] - spec.width) // 2
    top = (new_size[1] - spec.height) // 2
    crop = resized.crop((left, top, left + spec.width, top + spec.height)).convert(mode)
    levels = np.asarray(crop, dtype=np.uint8).reshape(spec.height, spec.width, -1)
    return np.ascontiguousarray(levels.transpose(2, 0, 1))


def _crop_to_aspect(image: Image.Image, max_ratio: int) -> Image.Image:
    """Centre-crop the longer side to at most `max_ratio` times the shorter one."""
    width, height = image.size
    limit = max_ratio * min(width, height)
    if max(width, height) <= limit:
        return image
    kept_width, kept_height = min(width, limit), min(height, limit)
    left, top = (width - kept_width) // 2, (height - kept_height) // 2
    return image.crop((left, top, left + kept_width, top + kept_height))


def model_pixels(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """What the model reads before `unit_range` and normalisation, as compact as it is exact.

    (C, H, W): uint8 levels for a "crop" model (a decode worker sends 150 KB instead of 600 KB
    for 224²×3), float32 in [0, 1] for a "digit" model (MNIST-style centring interpolates).
    """
    if spec.style == "digit":
        return np.ascontiguousarray(mnist_style(image), dtype=np.float32)[np.newaxis]
    return crop_pixels(image, spec)


def unit_range(pixels: np.ndarray) -> np.ndarray:
    """`model_pixels` as float32 in [0, 1] (levels divided by 255)."""
    return pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels
