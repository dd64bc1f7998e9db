"""Turn a user's digit picture into the 28×28 form LeNet5 was trained on.

MNIST digits are white ink on black, scaled to fit a 20×20 box (aspect kept, antialiased) and
placed in a 28×28 field so their centre of mass sits at pixel (14, 14). Users send the opposite:
dark ink on light paper or on a transparent canvas, at any size and position. This module bridges
the two so the network sees what it knows.
"""

import math

import numpy as np
from PIL import Image, ImageFilter

MNIST_SIDE = 28
DIGIT_BOX = 20
MNIST_CENTRE = 14.0
"""MNIST puts the centre of mass at row/column index 14 (measured on the 10,000 digits: 14.00)."""

WORKING_SIDE = 512
"""Larger pictures are shrunk first: the result is 20 px tall anyway and photos can be huge."""

MIN_INK_CONTRAST = 0.15
"""Below this grey-level difference between ink and background the picture counts as blank."""

NOISE_FLOOR = 0.2
"""Ink intensities (0 background … 1 darkest stroke) below this are paper texture, not ink."""


def mnist_style(image: Image.Image) -> np.ndarray:
    """Return ``image`` as a float32 ``(28, 28)`` MNIST-like digit in [0, 1], white ink on black.

    Transparent pixels count as background (composited onto white), the background's polarity
    is detected so both dark-on-light and MNIST-like light-on-dark inputs work, and a picture
    without ink yields all zeros instead of an error. EXIF orientation is the decoder's job.
    """
    gray = _grayscale_on_white(image)
    found = _ink_and_mask(gray)
    if found is None:
        return np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    ink, ink_mask = found
    rows = np.flatnonzero(ink_mask.any(axis=1))
    columns = np.flatnonzero(ink_mask.any(axis=0))
    digit = _fit_into_box(ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1])
    return _place_by_centre_of_mass(digit)


def _grayscale_on_white(image: Image.Image) -> np.ndarray:
    """Float32 grey levels in [0, 1], alpha composited onto white, at most ``WORKING_SIDE`` px."""
    if "A" in image.getbands() or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        gray_image = Image.alpha_composite(white, image.convert("RGBA")).convert("L")
    else:
        gray_image = image.convert("L")
    longest = max(gray_image.size)
    if longest > WORKING_SIDE:
        scale = WORKING_SIDE / longest
        size = (max(1, round(gray_image.width * scale)), max(1, round(gray_image.height * scale)))
        gray_image = gray_image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(gray_image, dtype=np.float32) / 255.0


def _ink_and_mask(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Ink intensity (0 background, 1 strongest ink) and the mask whose bounding box is cropped.

    The background is a plane through the border pixels, so a photo's lighting gradient is not
    mistaken for ink. Ink is whichever extreme lies farther from that background, so dark-on-light
    and light-on-dark both work. Statistics come from a 3×3 median filtered copy so single specks
    neither set the contrast nor stretch the bounding box; for hairline drawings the filter
    erases, the unfiltered image is used instead. ``None`` means the picture is blank.
    """
    for source in (_median_3x3(gray), gray):
        background = _border_plane(source)
        source_relative = source - background
        darker_extent = -float(source_relative.min())
        brighter_extent = float(source_relative.max())
        contrast = max(darker_extent, brighter_extent)
        if contrast < MIN_INK_CONTRAST:
            continue
        signed_contrast = -contrast if darker_extent > brighter_extent else contrast
        ink_mask = _ink_intensity(source_relative, signed_contrast) > 0
        return _ink_intensity(gray - background, signed_contrast), ink_mask
    return None


def _border_plane(levels: np.ndarray) -> np.ndarray:
    """Least-squares plane ``a + b·row + c·column`` through the border pixels, everywhere."""
    rows, columns = np.indices(levels.shape)
    border = np.zeros(levels.shape, dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    design = np.stack([np.ones(int(border.sum())), rows[border], columns[border]], axis=1)
    offset, row_slope, column_slope = np.linalg.lstsq(design, levels[border], rcond=None)[0]
    return offset + row_slope * rows + column_slope * columns


def _ink_intensity(relative: np.ndarray, signed_contrast: float) -> np.ndarray:
    """Map grey levels relative to the background to ink in [0, 1], 0 up to the noise floor.

    ``signed_contrast`` is negative for dark ink, so dividing by it also fixes the polarity.
    """
    scaled = relative / signed_contrast
    return np.clip((scaled - NOISE_FLOOR) / (1 - NOISE_FLOOR), 0, 1).astype(np.float32)


def _median_3x3(gray: np.ndarray) -> np.ndarray:
    """3×3 median filter (edges replicated)."""
    return np.asarray(Image.fromarray(gray).filter(ImageFilter.MedianFilter(3)))


def _fit_into_box(ink: np.ndarray) -> np.ndarray:
    """Scale the cropped ink so its longer side is ``DIGIT_BOX`` px (antialiased, aspect kept)."""
    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Paste ``digit`` into a black 28×28 field with its centre of mass on pixel (14, 14).

    The shift is rounded to whole pixels, as MNIST did, and clamped so no ink falls off the edge.
    Intensities are rescaled so the strongest ink is 1, like MNIST's.
    """
    field = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    total = float(digit.sum())
    if total <= 0:
        return field
    height, width = digit.shape
    centre_row = float((digit.sum(axis=1) * np.arange(height)).sum()) / total
    centre_column = float((digit.sum(axis=0) * np.arange(width)).sum()) / total
    top = min(max(math.floor(MNIST_CENTRE - centre_row + 0.5), 0), MNIST_SIDE - height)
    left = min(max(math.floor(MNIST_CENTRE - centre_column + 0.5), 0), MNIST_SIDE - width)
    field[top : top + height, left : left + width] = digit / digit.max()
    return field
