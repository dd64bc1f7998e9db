"""Mutation fuzzing of real image files: every outcome is a model input or a typed `ImageError`
(an API 4xx), never another exception (an API 5xx).

Two kinds of mutation: anywhere in the file (mostly the header, where sizes and offsets live), and
inside one metadata block (PNG eXIf, iCCP, tEXt, zTXt, iTXt; JPEG APP1 Exif/XMP, APP2 ICC/MPF),
re-framed afterwards (length and CRC fixed) so the mutation reaches the metadata parser instead
of failing the container's checksum.

Derandomized, so every run tries the same cases. `CONVLENS_FUZZ_EXAMPLES` sets how many of each
(default 300, `make fuzz` 10,000); a tenth of that many also go through the in-process API.
"""

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from app.config import REPO_ROOT
from app.core.preprocess import ImageError, decode_image, to_model_input
from app.core.registry import read_model_specs
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL
from tests.security.payloads import jpeg_with_segment, png_with_chunk

EXAMPLES = int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "300"))
API_EXAMPLES = max(20, EXAMPLES // 10)
FUZZ_MAX_PIXELS = 1_000_000
"""Below the server's 40 M so a mutated header declaring a huge image costs little time here; the
API part runs with the server's real settings."""

SPECS = [spec.preprocess for spec in read_model_specs(REPO_ROOT / "models")]


def seed_files() -> list[bytes]:
    """Small real photos and drawings in each allowlisted container the mutations start from."""
    photo = Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")
    photo = photo.resize((40, 40))
    frames = [photo.convert("P"), photo.rotate(90).convert("P")]
    digit = Image.fromarray(np.where(np.eye(24, dtype=bool), 0, 255).astype(np.uint8))
    return [
        encode(photo, "PNG"),
        encode(photo.convert("RGBA"), "PNG"),
        encode(digit, "PNG"),
        encode(photo, "JPEG", quality=80),
        encode(photo, "JPEG", quality=80, progressive=True),
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
        encode(photo, "WEBP", quality=80),
        encode(photo, "BMP"),
    ]


SEEDS = seed_files()
INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff", b"\x00\x00\x00\x00"]


def mutate(draw: st.DrawFn, data: bytearray, head: int) -> bytes:
    """One to four flips, truncations, insertions, overwrites or deletions of `data`, aimed at
    its first `head` bytes half of the time."""
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        last = len(data) - 1
        at = draw(st.one_of(st.integers(0, min(last, head)), st.integers(0, last)))
        action = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "delete"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif action == "overwrite":
            patch = draw(st.one_of(st.sampled_from(INTERESTING), st.binary(min_size=1, max_size=8)))
            data[at : at + len(patch)] = patch
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A seed file after a few mutations, aimed at the header (where sizes, counts and offsets
    live) half of the time."""
    return mutate(draw, bytearray(draw(st.sampled_from(SEEDS))), head=64)


def metadata_seeds() -> list[tuple[Callable[[bytes], bytes], bytes]]:
    """(frame, payload): real metadata blocks and the function that puts one into a small image
    with a valid length and CRC, whatever the payload has become."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    exif[0x010F] = "convlens"  # make
    exif.get_ifd(0x8769)[0x9003] = "2024:01:01 00:00:00"  # Exif sub-IFD: date taken
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPS sub-IFD
    tiff = exif.tobytes()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    mpf = next(segment for segment in _segments(_mpo()) if segment.startswith(b"\xff\xe2"))[4:]

    def png(kind: bytes) -> Callable[[bytes], bytes]:
        return lambda payload: png_with_chunk(kind, payload)

    def jpeg(marker: int) -> Callable[[bytes], bytes]:
        return lambda payload: jpeg_with_segment(marker, payload[:65533])

    return [
        (png(b"eXIf"), tiff),
        (png(b"iCCP"), b"sRGB\0\0" + zlib.compress(icc)),
        (png(b"tEXt"), b"Comment\0made by convlens"),
        (png(b"zTXt"), b"Comment\0\0" + zlib.compress(b"made by convlens")),
        (png(b"iTXt"), b"XML:com.adobe.xmp\0\0\0\0\0" + xmp),
        (png(b"iTXt"), b"Title\0\1\0en\0Titel\0" + zlib.compress("ünïcode".encode())),
        (jpeg(0xE1), b"Exif\0\0" + tiff),
        (jpeg(0xE1), b"http://ns.adobe.com/xap/1.0/\0" + xmp),
        (jpeg(0xE2), b"ICC_PROFILE\0\1\1" + icc),
        (jpeg(0xE2), mpf),
    ]


def _mpo() -> bytes:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


def _segments(jpeg: bytes) -> list[bytes]:
    """The marker segments before the first scan (each with its marker and length)."""
    segments, at = [], 2
    while jpeg[at + 1] != 0xDA:
        length = int.from_bytes(jpeg[at + 2 : at + 4], "big")
        segments.append(jpeg[at : at + 2 + length])
        at += 2 + length
    return segments


METADATA_SEEDS = metadata_seeds()


@st.composite
def mutated_metadata(draw: st.DrawFn) -> bytes:
    """A small image whose one metadata block was mutated (and re-framed validly)."""
    frame, payload = draw(st.sampled_from(METADATA_SEEDS))
    return frame(mutate(draw, bytearray(payload), head=32))


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_input_or_image_error(data: bytes) -> None:
    try:
        image = decode_image(data, FUZZ_MAX_PIXELS)
    except ImageError:
        return
    assert image.mode in ("RGB", "L")
    for spec in SPECS:
        tensor = to_model_input(image, spec)
        assert tensor.shape == (spec.channels, spec.height, spec.width)
        assert torch.isfinite(tensor).all()


@FUZZ_SETTINGS
@given(mutated_images())
def test_mutated_images_become_inputs_or_image_errors(data: bytes) -> None:
    assert_input_or_image_error(data)


@FUZZ_SETTINGS
@given(mutated_metadata())
def test_mutated_metadata_becomes_inputs_or_image_errors(data: bytes) -> None:
    assert_input_or_image_error(data)


API_SETTINGS = settings(
    FUZZ_SETTINGS,
    max_examples=API_EXAMPLES,
    suppress_health_check=[
        *FUZZ_SETTINGS.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
IMAGE_ERROR_CODES = (
    "empty_image",
    "unsupported_image_type",
    "image_too_large",
    "image_too_complex",
    "corrupt_image",
)


async def assert_never_a_5xx(client: httpx.AsyncClient, data: bytes) -> None:
    response = await client.post(
        f"/api/v1/models/{PHOTO_MODEL}/analyze", files={"image": ("fuzz.bin", data, "image/png")}
    )
    assert response.status_code in (200, 400, 413, 415, 422), response.text
    if response.status_code != 200:
        assert response.json()["error"]["code"] in IMAGE_ERROR_CODES


@pytest.mark.anyio
@API_SETTINGS
@given(data=mutated_images())
async def test_mutated_uploads_never_get_a_5xx(client: httpx.AsyncClient, data: bytes) -> None:
    await assert_never_a_5xx(client, data)


@pytest.mark.anyio
@API_SETTINGS
@given(data=mutated_metadata())
async def test_mutated_metadata_uploads_never_get_a_5xx(
    client: httpx.AsyncClient, data: bytes
) -> None:
    await assert_never_a_5xx(client, data)
