"""Upload bytes → upright 8-bit image → model tensor, with every refusal typed."""

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.preprocess import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    PreprocessSpec,
    UnsupportedImageError,
    crop_tensor,
    decode_image,
    denormalize,
    normalize,
    to_8bit,
)
from tests.helpers import encode

PLENTY = 10**7
WHITE = [255, 255, 255]
IMAGENET = PreprocessSpec(
    style="crop",
    channels=3,
    height=224,
    width=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    resize=256,
)


def pixels(data: bytes, max_pixels: int = PLENTY) -> tuple[str, np.ndarray]:
    image = decode_image(data, max_pixels)
    return image.mode, np.asarray(image)


def four_colour_image() -> tuple[Image.Image, np.ndarray]:
    palette = np.array([(255, 0, 0), (0, 128, 0), (10, 20, 250), (240, 240, 240)], np.uint8)
    rgb = palette[np.random.default_rng(0).integers(0, 4, (4, 6))]
    return Image.fromarray(rgb), rgb


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width`×`height` grey pixels but carries almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("image_format", "options"),
    [("PNG", {}), ("GIF", {}), ("WEBP", {"lossless": True}), ("BMP", {})],
)
def test_lossless_formats_decode_to_the_exact_rgb_pixels(
    image_format: str, options: dict[str, object]
) -> None:
    image, rgb = four_colour_image()
    mode, decoded = pixels(encode(image, image_format, **options))
    assert mode == "RGB"
    np.testing.assert_array_equal(decoded, rgb)


def test_jpeg_decodes_to_nearly_the_same_colours() -> None:
    image = Image.new("RGB", (32, 16), (200, 30, 60))
    image.paste((20, 220, 90), (16, 0, 32, 16))
    mode, decoded = pixels(encode(image, "JPEG", quality=95))
    assert mode == "RGB"
    assert decoded.shape == (16, 32, 3)
    np.testing.assert_allclose(decoded[8, 4], (200, 30, 60), atol=3)
    np.testing.assert_allclose(decoded[8, 27], (20, 220, 90), atol=3)


@pytest.mark.parametrize("image_format", ["PNG", "BMP"])
def test_bilevel_mode_1_becomes_black_and_white_l(image_format: str) -> None:
    bits = Image.new("1", (3, 2))
    bits.putdata([1, 0, 1, 0, 0, 1])
    mode, decoded = pixels(encode(bits, image_format))
    assert mode == "L"
    np.testing.assert_array_equal(decoded, [[255, 0, 255], [0, 0, 255]])


def test_grey_l_is_kept() -> None:
    grey = np.array([[0, 17, 128], [200, 254, 255]], np.uint8)
    mode, decoded = pixels(encode(Image.fromarray(grey), "PNG"))
    assert mode == "L"
    np.testing.assert_array_equal(decoded, grey)


def test_grey_with_alpha_is_composited_on_white() -> None:
    grey_alpha = Image.new("LA", (3, 1))
    grey_alpha.putdata([(100, 0), (100, 255), (100, 51)])
    mode, decoded = pixels(encode(grey_alpha, "PNG"))
    assert mode == "RGB"
    assert decoded[0, 0].tolist() == WHITE
    assert decoded[0, 1].tolist() == [100, 100, 100]
    np.testing.assert_allclose(decoded[0, 2], [224] * 3, atol=1)  # 0.2 · 100 + 0.8 · 255


@pytest.mark.parametrize(("image_format", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_rgba_is_composited_on_white(image_format: str, options: dict[str, object]) -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(10, 20, 30, 0), (10, 20, 30, 255), (0, 0, 0, 255)])
    mode, decoded = pixels(encode(rgba, image_format, **options))
    assert mode == "RGB"
    np.testing.assert_array_equal(decoded, [[WHITE, [10, 20, 30], [0, 0, 0]]])


def palette_image() -> Image.Image:
    indexed = Image.new("P", (3, 1))
    indexed.putpalette([255, 0, 0, 0, 0, 255, 0, 200, 0])
    indexed.putdata([0, 1, 2])
    return indexed


def test_palette_becomes_rgb() -> None:
    mode, decoded = pixels(encode(palette_image(), "PNG"))
    assert mode == "RGB"
    np.testing.assert_array_equal(decoded, [[[255, 0, 0], [0, 0, 255], [0, 200, 0]]])


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_palette_transparency_becomes_white(image_format: str) -> None:
    mode, decoded = pixels(encode(palette_image(), image_format, transparency=0))
    assert mode == "RGB"
    np.testing.assert_array_equal(decoded, [[WHITE, [0, 0, 255], [0, 200, 0]]])


@pytest.mark.parametrize(
    ("mode", "values", "key", "expected"),
    [
        ("L", [0, 200], 0, [WHITE, [200] * 3]),
        ("RGB", [(0, 0, 0), (10, 20, 30)], (0, 0, 0), [WHITE, [10, 20, 30]]),
    ],
)
def test_colour_keyed_transparency_becomes_white(
    mode: str, values: list[object], key: object, expected: list[list[int]]
) -> None:
    keyed = Image.new(mode, (2, 1))
    keyed.putdata(values)
    decoded_mode, decoded = pixels(encode(keyed, "PNG", transparency=key))
    assert decoded_mode == "RGB"
    np.testing.assert_array_equal(decoded, [expected])


def test_cmyk_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (3, 1))
    cmyk.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255)])
    converted = to_8bit(cmyk)
    assert converted.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(converted), [[WHITE, [0, 255, 255], [0, 0, 0]]])
    mode, decoded = pixels(encode(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG"))
    assert mode == "RGB"
    np.testing.assert_allclose(decoded[8, 8], [0, 255, 255], atol=3)


def test_sixteen_bit_grey_png_is_divided_by_257() -> None:
    wide = np.array([[0, 65535, 257 * 100, 1000], [128, 32767, 32768, 65280]], np.uint16)
    mode, decoded = pixels(encode(Image.fromarray(wide), "PNG"))
    assert mode == "L"
    # 1000 / 257 = 3.89, 128 / 257 = 0.498, 32767 / 257 = 127.498, 32768 / 257 = 127.502,
    # 65280 / 257 = 254.0 (dividing by 256 instead would give 255)
    np.testing.assert_array_equal(decoded, [[0, 255, 100, 4], [0, 127, 128, 254]])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0, 17, 255]], [[0, 17, 255]]),  # already 8-bit range: kept
        ([[0, 257 * 3, 65535]], [[0, 3, 255]]),  # 16-bit range: / 257
        ([[-10, 0, 10]], [[0, 128, 255]]),  # anything else: own min–max (127.5 → 128)
    ],
)
def test_32_bit_integer_grey(values: list[list[int]], expected: list[list[int]]) -> None:
    converted = to_8bit(Image.fromarray(np.array(values, np.int32)))
    assert converted.mode == "L"
    np.testing.assert_array_equal(np.asarray(converted), expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[-1.0, 0.0, 1.0, 3.0]], [[0, 64, 128, 255]]),  # min–max: (x + 1) · 255 / 4
        ([[0.4, 99.6, 254.6, 0.0]], [[0, 100, 255, 0]]),  # within 0…255: rounded as is
        ([[np.nan, np.inf, 2.0, 0.0]], [[0, 0, 2, 0]]),  # non-finite → 0
    ],
)
def test_float_grey(values: list[list[float]], expected: list[list[int]]) -> None:
    converted = to_8bit(Image.fromarray(np.array(values, np.float32)))
    assert converted.mode == "L"
    np.testing.assert_array_equal(np.asarray(converted), expected)


@pytest.mark.parametrize(("orientation", "quarter_turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(orientation: int, quarter_turns: int) -> None:
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:] = (0, 0, 255)
    stored[:8, :8] = (255, 0, 0)  # a red marker in the stored top-left corner
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    _, plain = pixels(encode(image, "JPEG", quality=95))
    _, upright = pixels(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    np.testing.assert_array_equal(upright, np.rot90(plain, quarter_turns))
    # Where the marker ends up, worked out by hand: 6 = turn clockwise, 8 = counter-clockwise.
    marker = {3: (19, 35), 6: (4, 19), 8: (35, 4)}[orientation]
    np.testing.assert_allclose(upright[marker], (255, 0, 0), atol=4)
    np.testing.assert_allclose(upright[4, 4], (0, 0, 255), atol=4)


@pytest.mark.parametrize(("image_format", "options"), [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animation_gives_its_first_frame(image_format: str, options: dict[str, object]) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (5, 3), colour) for colour in colours]
    data = encode(frames[0], image_format, save_all=True, append_images=frames[1:], **options)
    mode, decoded = pixels(data)
    assert mode == "RGB"
    np.testing.assert_array_equal(decoded, np.full((3, 5, 3), (255, 0, 0)))


def test_empty_upload() -> None:
    with pytest.raises(EmptyImageError) as raised:
        decode_image(b"", PLENTY)
    assert raised.value.code == "empty_image"


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(5).bytes(2000),
        b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9"/></svg>',
        b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
        encode(Image.new("RGB", (4, 4)), "TIFF"),
        b"hello, world\n",
    ],
    ids=["random", "svg", "pdf", "tiff", "text"],
)
def test_other_file_types_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError) as raised:
        decode_image(data, PLENTY)
    assert raised.value.code == "unsupported_image_type"


def noise(image_format: str, **options: object) -> bytes:
    rgb = np.random.default_rng(6).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    return encode(Image.fromarray(rgb), image_format, **options)


@pytest.mark.parametrize(
    ("image_format", "options", "keep"),
    [
        ("PNG", {}, 16),  # inside IHDR
        ("PNG", {}, 33),  # complete IHDR, nothing after it
        ("PNG", {}, 100),
        ("PNG", {}, 0.5),
        ("JPEG", {}, 3),
        ("JPEG", {}, 100),
        ("JPEG", {}, 0.5),
        ("JPEG", {}, -2),  # only the end-of-image marker missing
        ("GIF", {}, 0.5),
        ("BMP", {}, 0.5),
        ("WEBP", {"lossless": True}, 0.5),
    ],
)
def test_truncated_files_are_corrupt(
    image_format: str, options: dict[str, object], keep: float
) -> None:
    data = noise(image_format, **options)
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    with pytest.raises(CorruptImageError) as raised:
        decode_image(data[:cut], PLENTY)
    assert raised.value.code == "corrupt_image"


def test_zero_width_png_is_corrupt() -> None:
    with pytest.raises(CorruptImageError):
        decode_image(png_header_only(0, 5), PLENTY)


@pytest.mark.parametrize("max_pixels", [PLENTY, 10**12])
def test_decompression_bomb_is_refused_from_its_header(max_pixels: int) -> None:
    with pytest.raises(ImageTooLargeError) as raised:
        decode_image(png_header_only(100_000, 100_000), max_pixels)
    assert raised.value.code == "image_too_large"


def test_declared_size_over_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match=r"10000×5000 = 50,000,000 pixels"):
        decode_image(png_header_only(10_000, 5_000), 1_000_000)


def test_pixel_cap_boundary() -> None:
    data = noise("PNG")  # 50 × 40 = 2000 pixels
    assert decode_image(data, 2000).size == (50, 40)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, 1999)


@pytest.mark.parametrize("size", [(1, 1), (1, 8000), (8000, 1)])
def test_extreme_shapes_decode(size: tuple[int, int]) -> None:
    ramp = (np.arange(size[0] * size[1]) % 251).astype(np.uint8).reshape(size[1], size[0])
    mode, decoded = pixels(encode(Image.fromarray(ramp), "PNG"))
    assert mode == "L"
    np.testing.assert_array_equal(decoded, ramp)


def reference_tensor(image: Image.Image, size: tuple[int, int], box: tuple[int, int]) -> np.ndarray:
    """Resize to `size` with Pillow, crop 224×224 at `box` = (left, top) in numpy, normalise."""
    resized = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32)
    left, top = box
    crop = resized[top : top + 224, left : left + 224] / np.float32(255)
    mean = np.array(IMAGENET.mean, np.float32)
    std = np.array(IMAGENET.std, np.float32)
    return ((crop - mean) / std).transpose(2, 0, 1)


def random_photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8))


@pytest.mark.parametrize(
    ("size", "resized", "box"),
    [
        ((400, 300), (341, 256), (58, 16)),  # 256 / 300 · 400 = 341.3; (341 − 224) // 2 = 58
        ((300, 500), (256, 427), (16, 101)),  # 256 / 300 · 500 = 426.7
        ((256, 256), (256, 256), (16, 16)),
        ((1000, 250), (1024, 256), (400, 16)),  # aspect 4: not pre-cropped
    ],
)
def test_crop_tensor_resizes_and_centre_crops(
    size: tuple[int, int], resized: tuple[int, int], box: tuple[int, int]
) -> None:
    image = random_photo(*size)
    tensor = crop_tensor(image, IMAGENET)
    assert tensor.shape == (3, 224, 224)
    assert tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), reference_tensor(image, resized, box), atol=1e-6)


def test_crop_tensor_of_grey_has_three_equal_channels() -> None:
    tensor = crop_tensor(random_photo(300, 260, mode="L"), IMAGENET)
    seen = denormalize(tensor, IMAGENET)
    np.testing.assert_array_equal(seen[:, :, 0], seen[:, :, 1])
    np.testing.assert_array_equal(seen[:, :, 0], seen[:, :, 2])


def test_crop_tensor_of_one_pixel_is_that_colour_everywhere() -> None:
    tensor = crop_tensor(Image.new("RGB", (1, 1), (255, 0, 51)), IMAGENET)
    expected = np.full((224, 224, 3), (255, 0, 51))
    np.testing.assert_array_equal(denormalize(tensor, IMAGENET), expected)


def test_crop_tensor_of_an_extreme_strip_crops_before_resizing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 1×8000 strip would resize to 256×2,048,000 px; only the centre 1×4 (rows 3998–4001) is kept.
    resized_sizes: list[tuple[int, int]] = []
    original_resize = Image.Image.resize

    def recording_resize(image: Image.Image, size: tuple[int, int], *args: object) -> Image.Image:
        resized_sizes.append(tuple(size))
        return original_resize(image, size, *args)

    ramp = (np.arange(8000) % 256).astype(np.uint8).reshape(8000, 1)
    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    tensor = crop_tensor(Image.fromarray(ramp), IMAGENET)
    monkeypatch.undo()
    assert resized_sizes == [(256, 1024)]
    centre = Image.fromarray(ramp[3998:4002])
    # 1×4 → 256×1024; (1024 − 224) // 2 = 400, (256 − 224) // 2 = 16
    np.testing.assert_allclose(
        tensor.numpy(), reference_tensor(centre, (256, 1024), (16, 400)), atol=1e-6
    )


def test_normalize_and_denormalize_exact_values() -> None:
    spec = PreprocessSpec(style="digit", channels=1, height=1, width=3, mean=(0.5,), std=(0.25,))
    assert normalize(torch.tensor([[[0.0, 0.5, 1.0]]]), spec).tolist() == [[[-2.0, 0.0, 2.0]]]
    # 0.5 ± 0.25 · 5 lies outside [0, 1] and is clipped; 0.5 · 255 = 127.5 rounds to even 128
    assert denormalize(torch.tensor([[[-5.0, 0.0, 5.0]]]), spec).tolist() == [[0, 128, 255]]


def test_normalize_denormalize_round_trip_is_exact_to_one_level() -> None:
    levels = torch.arange(256, dtype=torch.float32).reshape(1, 16, 16)
    image = levels.repeat(3, 1, 1)
    image[1] = image[1].flip(-1)
    normalized = normalize(image / 255, IMAGENET)
    expected = image.permute(1, 2, 0).to(torch.uint8).numpy()
    np.testing.assert_array_equal(denormalize(normalized, IMAGENET), expected)
    grey = PreprocessSpec(style="digit", channels=1, height=16, width=16, mean=(0.13,), std=(0.31,))
    back = denormalize(normalize(levels / 255, grey), grey)
    assert back.shape == (16, 16)
    np.testing.assert_array_equal(back, levels[0].to(torch.uint8).numpy())


def test_crop_tensor_for_a_grey_model_is_one_channel_resized_as_the_spec_says() -> None:
    spec = PreprocessSpec(
        style="crop",
        channels=1,
        height=4,
        width=4,
        mean=(0.5,),
        std=(0.5,),
        resize=6,
        interpolation="nearest",
    )
    image = random_photo(12, 9)  # 6 / 9 · 12 = 8 wide; crop left (8 − 4) // 2 = 2, top 1
    tensor = crop_tensor(image, spec)
    grey = np.asarray(image.convert("L").resize((8, 6), Image.Resampling.NEAREST), np.float32)
    expected = (grey[1:5, 2:6] / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    assert tensor.shape == (1, 4, 4) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor[0].numpy(), expected, atol=1e-6)
