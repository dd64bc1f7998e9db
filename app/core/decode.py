"""Upload bytes → an upright 8-bit image, with every check that the header allows made first.

Pillow and numpy only: a decode worker process runs this (app/services/decode_worker.py). Before
a pixel is decoded: an allowlist of formats, a pixel cap, an estimate of the memory decoding needs
for the image's mode, and the scan count of a progressive JPEG (each scan walks the whole image
again). Metadata is optional: EXIF orientation is applied when it can be read, and broken
metadata is dropped, never fatal.
"""

import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import ExifTags, Image, ImageMode, UnidentifiedImageError

from app.core.pixels import eight_bit_mode, to_8bit

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
"""Leading bytes of the allowed formats: a file that starts like one but won't open is corrupt."""

PILLOW_FAILURES = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ZeroDivisionError,
    RecursionError,
)
"""What Pillow's parsers raise on a malformed file while opening and loading it. Fuzzing EXIF met
`struct.error`, `AttributeError` and `TypeError` (issue 15); the lookup and arithmetic errors are
here because Pillow's pure-Python plugins index tables and offsets read from the file."""

MIB = 1024 * 1024


class ImageError(ValueError):
    """An upload that cannot become a model input; `code` is stable for API clients."""

    code = "invalid_image"


class EmptyImageError(ImageError):
    code = "empty_image"


class UnsupportedImageError(ImageError):
    code = "unsupported_image_type"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class ImageTooComplexError(ImageError):
    """Decoding would take too long: too many JPEG scans, or it ran past the decode deadline."""

    code = "image_too_complex"


class CorruptImageError(ImageError):
    code = "corrupt_image"


@contextmanager
def _pillow_reading(failure: str, max_pixels: int | None = None) -> Iterator[None]:
    """Pillow's warnings silenced (they describe metadata it skipped), its failures typed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UnidentifiedImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        limit = "" if max_pixels is None else f" (limit {max_pixels:,})"
        raise ImageTooLargeError(f"the image has too many pixels{limit}") from error
    except PILLOW_FAILURES as error:
        raise CorruptImageError(f"{failure}: {error}") from error


def open_image(
    data: bytes, max_pixels: int | None = None, max_bytes: int | None = None
) -> Image.Image:
    """Read the header of an upload (no pixels yet), refusing empty, foreign and oversized files.

    A WebP is measured from its own header first: Pillow's decoder allocates its canvases as it
    opens the file, so `max_pixels` and `max_bytes` must be checked before that.

    Raises:
        EmptyImageError: no bytes.
        UnsupportedImageError: not one of PNG, JPEG, GIF, WEBP, BMP.
        ImageTooLargeError: more than `max_pixels` pixels, or a WebP whose decoder alone would
            need more than `max_bytes`.
        CorruptImageError: a header that starts like an allowed format but is broken.
    """
    if not data:
        raise EmptyImageError("the uploaded file is empty")
    canvas = webp_canvas_size(data)
    if canvas is not None:
        _check_size(canvas, max_pixels)
        needed = canvas[0] * canvas[1] * WEBP_DECODER_BYTES_PER_PIXEL
        if max_bytes is not None and needed > max_bytes:
            raise _needs_too_much(canvas, "WebP", needed, max_bytes)
    try:
        with _pillow_reading("the image could not be read", max_pixels):
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as error:
        if _has_allowed_signature(data):
            raise CorruptImageError("the image header is truncated or invalid") from error
        raise UnsupportedImageError(
            "not a supported image: upload a PNG, JPEG, GIF, WEBP or BMP file"
        ) from error
    _check_size(image.size, max_pixels)
    return image


def _check_size(size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise CorruptImageError("the image has no pixels")
    if max_pixels is not None and width * height > max_pixels:
        pixels = width * height
        raise ImageTooLargeError(
            f"the image is {width}×{height} = {pixels:,} pixels; the limit is {max_pixels:,}"
        )


def _needs_too_much(
    size: tuple[int, int], kind: str, needed: int, limit: int
) -> ImageTooLargeError:
    width, height = size
    return ImageTooLargeError(
        f"decoding this {width}×{height} {kind} image needs {needed / MIB:.0f} MiB of memory; "
        f"the limit is {limit / MIB:.0f} MiB"
    )


WEBP_DECODER_BYTES_PER_PIXEL = 8
"""Pillow decodes every WebP with libwebp's animation decoder, which allocates two RGBA canvases
(the frame and the one before it) when the file is opened."""


def webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """A WebP's canvas (width, height) from its first chunk, or None for anything else."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    kind = data[12:16]
    if kind == b"VP8X":  # extended: 24-bit sizes minus one
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L":  # lossless: 14-bit sizes minus one after the 0x2f signature
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    if kind == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
        return width & 0x3FFF, height & 0x3FFF
    return None


def decode_image(
    data: bytes,
    max_pixels: int,
    *,
    max_bytes: int | None = None,
    max_jpeg_scans: int | None = None,
) -> Image.Image:
    """Decode upload bytes into an upright 8-bit RGB or L image (first frame of animations).

    ``max_bytes`` caps the memory decoding needs (`decoding_bytes`), ``max_jpeg_scans`` the scans
    of a JPEG; both are checked from the header, before any pixel is decoded. None: no check.

    Raises:
        EmptyImageError, UnsupportedImageError: see `open_image`.
        ImageTooLargeError: too many pixels, or more memory than `max_bytes`.
        ImageTooComplexError: a JPEG with more than `max_jpeg_scans` scans.
        CorruptImageError: truncated or otherwise undecodable data.
    """
    image = open_image(data, max_pixels, max_bytes)
    if (
        max_jpeg_scans
        and image.format in ("JPEG", "MPO")
        and jpeg_scan_count(data, stop_after=max_jpeg_scans) > max_jpeg_scans
    ):
        raise ImageTooComplexError(
            f"the JPEG has more than {max_jpeg_scans} scans; each scan makes the decoder go "
            "over the whole image again (encoders write at most a few dozen)"
        )
    if max_bytes is not None and (needed := decoding_bytes(image)) > max_bytes:
        raise _needs_too_much(image.size, image.mode, needed, max_bytes)
    with _pillow_reading("the image data is truncated or corrupt", max_pixels):
        image.seek(0)
        image.load()
    try:
        return to_8bit(upright(image))
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise CorruptImageError(f"the image could not be converted: {error}") from error


def _has_allowed_signature(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""In entropy-coded data a real 0xFF byte is written as FF 00, and FF D0–D7 are restart markers:
any other FF xx is the next marker."""


def jpeg_scan_count(data: bytes, stop_after: int | None = None) -> int:
    """How many scans (SOS segments) a JPEG's main image has, stopping once past `stop_after`.

    Reads segment by segment, so bytes inside metadata (an EXIF thumbnail's own scans) are
    skipped; the walk ends at the first EOI or anything that is not a marker.
    """
    scans, at = 0, 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xD9:  # end of image
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, standalone
            at += 1 if marker == 0xFF else 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:
            scans += 1
            if stop_after is not None and scans > stop_after:
                break
            following = _MARKER_AFTER_SCAN.search(data, at)
            if following is None:
                break
            at = following.start()
    return scans


def bytes_per_pixel(mode: str) -> int:
    """Bytes Pillow holds per pixel in `mode`: one band in its own size, several bands in 4."""
    described = ImageMode.getmode(mode)
    return 4 if len(described.bands) > 1 else np.dtype(described.typestr).itemsize


def decoding_bytes(image: Image.Image) -> int:
    """Memory needed to decode an opened image and convert it to 8 bits, from its header alone.

    The decoded pixels, their 8-bit copy when `to_8bit` makes one, and the decoder's own: for a
    progressive JPEG the coefficients of every 8×8 block that libjpeg keeps until the last scan,
    for a WebP libwebp's two canvases. Copies made after that (an EXIF rotation, resizing) are
    left to the decode worker's address-space limit.
    """
    width, height = image.size
    held = width * height * bytes_per_pixel(image.mode)
    target = eight_bit_mode(image)
    converted = 0 if target is None else width * height * bytes_per_pixel(target)
    decoder = width * height * WEBP_DECODER_BYTES_PER_PIXEL if image.format == "WEBP" else 0
    return held + converted + decoder + _jpeg_coefficient_bytes(image)


def _jpeg_coefficient_bytes(image: Image.Image) -> int:
    """A multi-scan JPEG's whole-image coefficient buffer: 64 int16 per block, each component's
    blocks rounded up to whole MCUs (as libjpeg's jdcoefct.c allocates them)."""
    layers = getattr(image, "layer", None)
    if image.format not in ("JPEG", "MPO") or not image.info.get("progressive") or not layers:
        return 0
    width, height = image.size
    max_h = max(layer[1] for layer in layers)
    max_v = max(layer[2] for layer in layers)
    total = 0
    for _, h, v, _ in layers:
        columns = math.ceil(width * h / (max_h * 8))
        rows = math.ceil(height * v / (max_v * 8))
        total += math.ceil(columns / h) * h * math.ceil(rows / v) * v * 64 * 2
    return total


_TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = as stored when absent, malformed or unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except MemoryError:
        raise
    except Exception:  # metadata is optional, and Pillow's EXIF parser raises anything
        return 1
    return value if type(value) is int else 1


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (itself when upright)."""
    method = _TRANSPOSITIONS.get(exif_orientation(image))
    return image if method is None else image.transpose(method)
