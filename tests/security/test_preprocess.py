"""Whatever mode or shape an upload decodes to, both models get a finite tensor of their shape.

Values are checked against hand-computed references where a hostile input pins them down (flat
colours, blank digits, premultiplied alpha); otherwise the guarantee is shape, dtype and finiteness.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from app.config import REPO_ROOT
from app.core.preprocess import PreprocessSpec, decode_image, to_8bit, to_model_input
from app.core.registry import read_model_specs
from tests.helpers import encode
from tests.security.payloads import gradient_image

SPECS = {spec.preprocess.style: spec.preprocess for spec in read_model_specs(REPO_ROOT / "models")}
STYLES = sorted(SPECS)
CAP = 40_000_000


def assert_model_input(tensor: torch.Tensor, spec: PreprocessSpec) -> None:
    assert tensor.shape == (spec.channels, spec.height, spec.width)
    assert tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


def normalized(values: tuple[float, ...], spec: PreprocessSpec) -> torch.Tensor:
    """(value − mean) / std per channel in float32, broadcast over the input size."""
    value, mean, std = (torch.tensor(v, dtype=torch.float32) for v in (values, spec.mean, spec.std))
    return ((value - mean) / std).view(-1, 1, 1).expand(spec.channels, spec.height, spec.width)


def hostile_wide_image(mode: str) -> Image.Image:
    """16/32-bit and float grey with the values that break naive scaling."""
    ramp = np.asarray(gradient_image(37, 23).convert("L"), np.float64)
    if mode == "I;16":
        return Image.fromarray((ramp * 257).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((ramp * 100_000 - 9_000_000).astype(np.int32))
    values = (ramp / 255 * 1e30).astype(np.float32)
    values[0, :5] = [np.nan, np.inf, -np.inf, -1e38, 3e38]
    return Image.fromarray(values)


IN_MEMORY_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK"]
IN_MEMORY_MODES += ["YCbCr", "HSV", "LAB"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("mode", [*IN_MEMORY_MODES, "I;16", "I", "F"])
def test_every_pillow_mode_becomes_a_finite_model_input(mode: str, style: str) -> None:
    image = hostile_wide_image(mode) if mode in ("I;16", "I", "F") else gradient_image(37, 23)
    image = image if image.mode == mode else image.convert(mode)
    assert image.mode == mode
    eight_bit = to_8bit(image)
    assert eight_bit.mode in ("RGB", "L")
    assert_model_input(to_model_input(eight_bit, SPECS[style]), SPECS[style])


ENCODED = [
    ("1", "PNG", {}),
    ("1", "BMP", {}),
    ("L", "JPEG", {}),
    ("LA", "PNG", {}),
    ("P", "GIF", {"transparency": 0}),
    ("P", "PNG", {}),
    ("RGBA", "PNG", {}),
    ("RGBA", "WEBP", {"lossless": True}),
    ("CMYK", "JPEG", {}),
    ("I;16", "PNG", {}),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("mode", "image_format", "options"), ENCODED)
def test_every_decodable_mode_becomes_a_finite_model_input(
    mode: str, image_format: str, options: dict[str, object], style: str
) -> None:
    image = hostile_wide_image(mode) if mode == "I;16" else gradient_image(37, 23).convert(mode)
    decoded = decode_image(encode(image, image_format, **options), CAP)
    assert decoded.mode in ("RGB", "L")
    assert_model_input(to_model_input(decoded, SPECS[style]), SPECS[style])


def test_premultiplied_grey_is_composited_like_straight_alpha() -> None:
    straight = Image.new("LA", (3, 2), (124, 128))
    premultiplied = straight.convert("La")  # stores (62, 128)
    # 123 (62·255/128, un-premultiplied) over white at alpha 128/255: 123·128/255 + 255·127/255
    expected = round(123 * 128 / 255 + 255 * 127 / 255)
    assert np.asarray(to_8bit(premultiplied)).tolist() == [[[expected] * 3] * 3] * 2


@pytest.mark.parametrize("size", [(1, 1), (1, 80_000), (80_000, 1), (3, 80_000)])
def test_extreme_shapes_give_the_flat_colour_exactly(size: tuple[int, int]) -> None:
    spec = SPECS["crop"]
    decoded = decode_image(encode(Image.new("RGB", size, (200, 40, 90)), "PNG"), CAP)
    tensor = to_model_input(decoded, spec)
    assert_model_input(tensor, spec)
    expected = normalized((200 / 255, 40 / 255, 90 / 255), spec)
    torch.testing.assert_close(tensor, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(1, 1), (1, 80_000), (80_000, 1)])
def test_extreme_blank_shapes_are_a_blank_digit(size: tuple[int, int]) -> None:
    spec = SPECS["digit"]
    decoded = decode_image(encode(Image.new("L", size, 255), "PNG"), CAP)
    tensor = to_model_input(decoded, spec)
    torch.testing.assert_close(tensor, normalized((0.0,), spec), atol=0, rtol=0)


@pytest.mark.parametrize("size", [(1, 80_000), (80_000, 1)])
def test_a_stroke_on_an_extreme_strip_is_a_digit(size: tuple[int, int]) -> None:
    strip = np.full((size[1], size[0]), 255, np.uint8)
    long_axis = max(size)
    ink = slice(long_axis // 3, 2 * long_axis // 3)
    if size[0] == 1:
        strip[ink, 0] = 0
    else:
        strip[0, ink] = 0
    spec = SPECS["digit"]
    tensor = to_model_input(decode_image(encode(Image.fromarray(strip), "PNG"), CAP), spec)
    assert_model_input(tensor, spec)
    ink_pixels = (tensor > normalized((0.0,), spec)).sum().item()
    # A one-pixel line fitted into the 20-px box: 20 lit pixels along it, the rest background.
    assert ink_pixels == 20
