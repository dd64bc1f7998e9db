"""Mutation fuzzing of real image files: every outcome is a model input or a typed `ImageError`
(an API 4xx), never another exception (an API 5xx).

Derandomized, so every run tries the same cases. `CONVLENS_FUZZ_EXAMPLES` sets how many (default
300, `make fuzz` 10,000); a tenth of that many also go through the in-process API.
"""

import os
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.config import REPO_ROOT
from app.core.preprocess import ImageError, decode_image, to_model_input
from app.core.registry import read_model_specs
from tests.helpers import encode
from tests.security.conftest import PHOTO_MODEL

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


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A seed file after one to four flips, truncations, insertions, overwrites or deletions,
    aimed at the header half of the time (where sizes, counts and offsets live)."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        last = len(data) - 1
        at = draw(st.one_of(st.integers(0, min(last, 64)), st.integers(0, last)))
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


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@given(mutated_images())
def test_mutated_images_become_inputs_or_image_errors(data: bytes) -> None:
    try:
        image = decode_image(data, FUZZ_MAX_PIXELS)
    except ImageError:
        return
    assert image.mode in ("RGB", "L")
    for spec in SPECS:
        tensor = to_model_input(image, spec)
        assert tensor.shape == (spec.channels, spec.height, spec.width)
        assert torch.isfinite(tensor).all()


@pytest.mark.anyio
@settings(
    FUZZ_SETTINGS,
    max_examples=API_EXAMPLES,
    suppress_health_check=[
        *FUZZ_SETTINGS.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=mutated_images())
async def test_mutated_uploads_never_get_a_5xx(client: httpx.AsyncClient, data: bytes) -> None:
    response = await client.post(
        f"/api/v1/models/{PHOTO_MODEL}/analyze", files={"image": ("fuzz.bin", data, "image/png")}
    )
    assert response.status_code in (200, 400, 413, 415, 422), response.text
    if response.status_code != 200:
        assert response.json()["error"]["code"] in (
            "empty_image",
            "unsupported_image_type",
            "image_too_large",
            "corrupt_image",
        )
