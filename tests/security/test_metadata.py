"""Broken metadata (EXIF, ICC, XMP, text chunks) never becomes a 500.

Pillow parses metadata lazily and raises whatever its parser meets (``struct.error`` for the
issue's 98-byte PNG, ``TypeError``, ``AttributeError``…). Metadata is optional: an image whose
metadata is broken decodes without it, or is refused as corrupt — never an unexpected error.
"""

import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from app.core.decode import ImageError, decode_image
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import (
    EXIF_HEADER_ONLY,
    gradient_image,
    jpeg_with_segment,
    png_with_chunk,
)

ANALYZE = f"/api/v1/models/{PHOTO_MODEL}/analyze"
CAP = 1_000_000
ORIENTATION = 0x0112


def tiff(entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0, order: str = "<") -> bytes:
    """A little- or big-endian TIFF header and one IFD of (tag, type, count, 4-byte value)."""
    mark = b"II*\x00" if order == "<" else b"MM\x00*"
    body = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack(order + "HHI", tag, kind, count) + value.ljust(4, b"\0")[:4]
    return mark + struct.pack(order + "I", 8) + body + struct.pack(order + "I", next_ifd)


def short(value: int, order: str = "<") -> bytes:
    return struct.pack(order + "H", value)


BROKEN_EXIF = {
    "header only (the issue)": b"II*\x00",
    "empty": b"",
    "IFD offset past the end": b"MM\x00*\x7f\xff\xff\xff",
    "IFD count without entries": b"II*\x00\x08\x00\x00\x00\xff\xff",
    "orientation as text": tiff([(ORIENTATION, 2, 2, b"6\0")]),
    "orientation out of range": tiff([(ORIENTATION, 3, 1, short(9))]),
    "orientation of count 0": tiff([(ORIENTATION, 3, 0, b"")]),
    "orientation with a huge count": tiff([(ORIENTATION, 3, 0x3FFFFFFF, struct.pack("<I", 8))]),
    "IFD chain looping to itself, turned": tiff([(ORIENTATION, 3, 1, short(6))], next_ifd=8),
    "Exif sub-IFD pointing into the header": tiff([(0x8769, 4, 1, struct.pack("<I", 2))]),
    "GPS sub-IFD past the end": tiff([(0x8825, 4, 1, struct.pack("<I", 0x7FFFFFFF))]),
    "unknown type": tiff([(ORIENTATION, 99, 1, short(6))]),
    "big-endian, rational orientation": tiff(
        [(ORIENTATION, 5, 1, struct.pack(">I", 4096))], order=">"
    ),
}

PNG_CHUNKS = {
    "iCCP with broken zlib": (b"iCCP", b"sRGB\0\0" + b"\x78\x9c\xff\xff garbage"),
    "iCCP with an unknown method": (b"iCCP", b"sRGB\0\x07" + zlib.compress(b"x" * 64)),
    "iCCP without a name": (b"iCCP", b"\x78\x9c"),
    "iCCP holding a garbage profile": (b"iCCP", b"x\0\0" + zlib.compress(b"\0" * 200)),
    "tEXt without a separator": (b"tEXt", b"Comment"),
    "tEXt with bytes over 127": (b"tEXt", b"Title\0\xff\xfe\x80"),
    "zTXt with broken zlib": (b"zTXt", b"Comment\0\0\x78\x9cnot zlib"),
    "zTXt with an unknown method": (b"zTXt", b"Comment\0\x05" + zlib.compress(b"hi")),
    "iTXt with broken UTF-8": (b"iTXt", b"Title\0\0\0\xff\xfe\0\xc3\x28"),
    "iTXt compressed, broken zlib": (b"iTXt", b"Title\0\1\0en\0\0\x78\x9cbroken"),
    "iTXt truncated": (b"iTXt", b"Title\0\1"),
    "XMP that is not XML": (b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta <<<"),
    "sRGB of the wrong length": (b"sRGB", b"\xff\xff"),
}

JPEG_SEGMENTS = {
    "APP1 Exif, header only": (0xE1, b"Exif\0\0II*\x00"),
    "APP1 Exif, IFD loop, turned": (0xE1, b"Exif\0\0" + tiff([(ORIENTATION, 3, 1, short(6))], 8)),
    "APP1 Exif, orientation as text": (0xE1, b"Exif\0\0" + tiff([(ORIENTATION, 2, 2, b"6\0")])),
    "APP1 Exif, truncated IFD": (0xE1, b"Exif\0\0MM\x00*\x00\x00\x00\x08\x00\x05"),
    "APP1 XMP that is not XML": (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta <<<"),
    "APP2 ICC chunk 2 of 1": (0xE2, b"ICC_PROFILE\0\x02\x01garbage"),
    "APP2 ICC chunk 0 of 0": (0xE2, b"ICC_PROFILE\0\x00\x00garbage"),
    "APP2 ICC without a chunk number": (0xE2, b"ICC_PROFILE\0"),
    "APP2 MPF, header only": (0xE2, b"MPF\0II*\x00"),
    "APP2 MPF with garbage entries": (0xE2, b"MPF\0" + tiff([(0xB002, 7, 16, b"\xff" * 4)])),
    "APP14 Adobe, truncated": (0xEE, b"Adobe"),
}


def png_cases() -> dict[str, bytes]:
    cases = {f"eXIf {name}": png_with_chunk(b"eXIf", exif) for name, exif in BROKEN_EXIF.items()}
    cases |= {name: png_with_chunk(kind, data) for name, (kind, data) in PNG_CHUNKS.items()}
    return cases


def jpeg_cases() -> dict[str, bytes]:
    cases = {f"APP1 Exif {name}": jpeg_with_segment(0xE1, b"Exif\0\0" + exif)
             for name, exif in BROKEN_EXIF.items()}  # fmt: skip
    cases |= {
        name: jpeg_with_segment(marker, data) for name, (marker, data) in JPEG_SEGMENTS.items()
    }
    return cases


PLAIN_PNG = decode_image(png_with_chunk(b"tEXt", b"Comment\0fine"), CAP)
PLAIN_JPEG = decode_image(jpeg_with_segment(0xE1, b"XMP\0fine"), CAP)
CASES = {**png_cases(), **jpeg_cases()}


def test_the_issue_s_exif_png_decodes_without_its_exif() -> None:
    image = decode_image(EXIF_HEADER_ONLY, CAP)
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), np.eye(16, dtype=np.uint8) * 255)


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_metadata_is_dropped_or_refused(name: str) -> None:
    """Decoded as if the metadata were absent, or refused; "turned" cases keep a readable
    orientation 6 (turn clockwise) beside their broken part, and it is applied."""
    try:
        image = decode_image(CASES[name], CAP)
    except ImageError:
        return
    plain = PLAIN_PNG if name in png_cases() else PLAIN_JPEG
    if name.endswith(", turned"):
        plain = plain.transpose(Image.Transpose.ROTATE_270)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(plain))


def test_a_valid_orientation_next_to_broken_tags_is_still_applied() -> None:
    exif = tiff([(ORIENTATION, 3, 1, short(3)), (0x8825, 4, 1, struct.pack("<I", 0x7FFFFFFF))])
    photo = gradient_image(32, 24)
    upright = decode_image(encode(photo, "PNG", exif=exif), CAP)
    np.testing.assert_array_equal(np.asarray(upright), np.asarray(photo.rotate(180)))


@pytest.mark.anyio
async def test_the_issue_s_exif_png_is_analyzed(client: httpx.AsyncClient) -> None:
    files = {"image": ("exif.png", EXIF_HEADER_ONLY, "image/png")}
    response = await client.post(ANALYZE, files=files)
    assert response.status_code == 200, response.text


THROUGH_THE_API = [
    "eXIf header only (the issue)",
    "APP1 Exif, truncated IFD",
    "APP1 XMP that is not XML",
    "APP2 ICC chunk 2 of 1",
    "APP2 MPF with garbage entries",
    "APP14 Adobe, truncated",
    "iCCP with broken zlib",
    "iCCP without a name",
    "iTXt with broken UTF-8",
    "zTXt with an unknown method",
]
"""One of each kind, decoded or refused, through the route and a decode worker (every case is
decoded in-process above; each upload here costs a forward)."""


@pytest.mark.anyio
async def test_broken_metadata_uploads_are_never_a_5xx(client: httpx.AsyncClient) -> None:
    for name in THROUGH_THE_API:
        data = CASES[name]
        response = await client.post(ANALYZE, files={"image": ("m.bin", data, "image/png")})
        assert response.status_code in (200, 422), (name, response.text)


def test_plain_seed_images_have_their_pixels() -> None:
    assert PLAIN_PNG.size == (16, 16) and PLAIN_JPEG.size == (32, 24)
    assert Image.fromarray(np.asarray(PLAIN_PNG)).getextrema() == (0, 255)
