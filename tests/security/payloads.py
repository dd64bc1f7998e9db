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
