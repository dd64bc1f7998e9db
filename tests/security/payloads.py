"""Hostile files built byte by byte: bombs that only declare their size, foreign formats, polyglots.

Every builder is deterministic so a failure reproduces exactly.
"""

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

from tests.helpers import encode


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG head declaring `width`×`height` RGB pixels, followed by one tiny IDAT.

    Decoding it would need width·height·3 bytes; a decoder that looks at the header first refuses
    it having allocated nothing (the file itself is under 100 bytes).
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def gif_bomb(width: int, height: int) -> bytes:
    """A GIF89a whose logical screen and only frame both declare `width`×`height` pixels."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global table of 2 colours
    palette = b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    lzw = b"\x02" + b"\x02\x4c\x01" + b"\x00"  # min code size 2, one tiny data block, terminator
    return b"GIF89a" + screen + palette + frame + lzw + b";"


def webp_bomb(width: int, height: int) -> bytes:
    """A WebP that is only a VP8X header declaring a `width`×`height` canvas (30 bytes).

    Pillow's WebP decoder allocates two RGBA canvases of that size as it opens the file.
    """
    extended = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(extended)) + extended
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def gradient_image(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    """A deterministic image with structure in both directions (not a flat colour)."""
    ys, xs = np.mgrid[0:height, 0:width]
    red = (xs * 255 // max(width - 1, 1)).astype(np.uint8)
    green = (ys * 255 // max(height - 1, 1)).astype(np.uint8)
    blue = ((xs + ys) % 256).astype(np.uint8)
    return Image.fromarray(np.stack([red, green, blue], axis=-1), mode="RGB").convert(mode)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    b"(/etc/passwd) (r) file closefile\nnewpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n"
)


def tiff() -> bytes:
    return encode(gradient_image(), "TIFF")


def foreign_files() -> dict[str, bytes]:
    """Formats outside the allowlist, each a real file of its kind."""
    return {"svg": SVG, "pdf": PDF, "eps": EPS, "tiff": tiff()}


POLYGLOT_PAYLOAD = b"<html><script>alert('polyglot')</script></html>"


def png_html_zip_polyglot() -> bytes:
    """A real PNG, then an HTML page, then a ZIP archive: valid as all three to lax parsers."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("run.sh", "#!/bin/sh\necho owned\n")
    return encode(gradient_image(), "PNG") + POLYGLOT_PAYLOAD + archive.getvalue()


GIF_JS_POLYGLOT = b"GIF89a/*\x0a\x00\x0a\x00\x00\x00\x00*/=1;alert('polyglot');//;"
"""Starts like a GIF and runs as JavaScript; it holds no image, so it is a corrupt GIF."""


def noise_png(seed: int, side: int = 64) -> bytes:
    """A `side`² RGB PNG of seeded noise: a normal upload nobody sent before (never a cache hit)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each SOS segment with its entropy-coded data in a JPEG Pillow wrote.

    Entropy-coded data never holds ``FF DA`` (a coded ``FF`` is always followed by ``00``), and
    Pillow's files carry no binary metadata, so splitting at ``FF DA`` finds exactly the scans.
    """
    starts = [at for at in range(len(data) - 1) if data[at : at + 2] == b"\xff\xda"]
    ends = [*starts[1:], data.rindex(b"\xff\xd9")]
    return list(zip(starts, ends, strict=True))


def scan_bomb(side: int = 6300, repeats: int = 7000) -> bytes:
    """A flat grey `side`×`side` progressive JPEG whose first AC scan is repeated `repeats` times.

    Every scan makes the decoder walk every 8×8 block again, and a flat image's AC scan is a few
    dozen bytes (one end-of-band run covers thousands of blocks): the issue's file (6300², 7,000
    repeats, 737 KB) took 26 s to decode, and 14 ms per repeat here.
    """
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=90)
    for start, end in _scans(data):
        components = data[start + 4]
        spectral_start = data[start + 5 + 2 * components]
        high_bit = data[start + 7 + 2 * components] >> 4
        if spectral_start > 0 and high_bit == 0:  # an AC scan, first pass
            eoi = data.rindex(b"\xff\xd9")
            return data[:eoi] + data[start:end] * repeats + data[eoi:]
    raise AssertionError("Pillow wrote no AC scan")


def jpeg_scan_count(data: bytes) -> int:
    return len(_scans(data))


def flat_png(side: int, bit_depth: int, colour_type: int) -> bytes:
    """A `side`×`side` PNG of zeros: tiny on disk, ``side² × bytes per pixel`` once decoded.

    Rows are compressed one at a time, so building a 6300² file never holds its pixels. Colour
    types: 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA.
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" * (1 + side * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def png_with_chunk(kind: bytes, payload: bytes, size: tuple[int, int] = (16, 16)) -> bytes:
    """A grey PNG (a diagonal line) with one extra ancillary chunk before its pixels."""
    plain = encode(Image.fromarray(np.eye(size[1], size[0], dtype=np.uint8) * 255), "PNG")
    at = plain.index(b"IDAT") - 4
    return plain[:at] + png_chunk(kind, payload) + plain[at:]


EXIF_HEADER_ONLY = png_with_chunk(b"eXIf", b"II*\x00")
"""The issue's 500: a 16×16 PNG whose ``eXIf`` chunk is only a TIFF byte-order mark."""


def jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    """A small baseline JPEG with one APPn segment (e.g. APP1 Exif, APP2 ICC) after SOI."""
    plain = encode(gradient_image(32, 24), "JPEG", quality=90)
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return plain[:2] + segment + plain[2:]
