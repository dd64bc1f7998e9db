"""MNIST-style preprocessing: geometry checked numerically, real digits redrawn as user images."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.architectures.lenet5 import load_lenet5
from app.core.digits import load_digits
from app.core.mnist_preprocess import mnist_style
from app.core.training import predict

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_DIR = Path(
    os.environ.get(
        "CONVLENS_MNIST_DIR", REPO_ROOT / ".cache" / "mnist" / "package" / "src" / "digits"
    )
)
COMMITTED_WEIGHTS = REPO_ROOT / "models" / "lenet5-mnist.safetensors"
SAMPLE_STEP = 20
"""Every 20th held-out digit: 50 digits, five of each class."""
MNIST_ROUND_TRIP_ERROR = 0.01630
"""Mean absolute pixel change when the 50 sampled MNIST digits themselves go through mnist_style."""
MNIST_INPUT_CORRECT = 50
CANVAS_CORRECT = 50
PHOTO_CORRECT = 10
"""Correct predictions of the committed weights (measured, 30 epochs, seed 0) per rendering."""


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(image.shape)
    return float((rows * image).sum() / image.sum()), float((columns * image).sum() / image.sum())


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows, columns = np.nonzero(image)
    return int(rows.max() - rows.min() + 1), int(columns.max() - columns.min() + 1)


def white_canvas_with_black_shape(
    height: int, width: int, box: tuple[int, int, int, int]
) -> Image.Image:
    pixels = np.full((height, width), 255, dtype=np.uint8)
    top, left, bottom, right = box
    pixels[top:bottom, left:right] = 0
    return Image.fromarray(pixels)


def as_8_bit_image(digit: np.ndarray) -> Image.Image:
    """A digit as an 8-bit greyscale picture, white on black like the MNIST files."""
    return Image.fromarray(np.uint8(np.round(digit * 255)))


def drawn_on_canvas(digit: np.ndarray) -> Image.Image:
    """A 28×28 MNIST digit upscaled to 280×280 as black ink on white paper."""
    ink = as_8_bit_image(digit).resize((280, 280), Image.Resampling.BILINEAR)
    return Image.fromarray(255 - np.asarray(ink))


def drawn_on_transparent_canvas(digit: np.ndarray) -> Image.Image:
    """Black ink whose alpha carries the stroke, on a fully transparent background."""
    ink = as_8_bit_image(digit).resize((280, 280), Image.Resampling.BILINEAR)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = np.asarray(ink)
    return Image.fromarray(rgba)


def photographed(digit: np.ndarray, seed: int) -> Image.Image:
    """Grey ink on unevenly lit, noisy grey paper in a 1200×900 RGB photo, digit off-centre."""
    generator = np.random.default_rng(seed)
    ink = np.asarray(
        Image.fromarray(digit).resize((300, 300), Image.Resampling.BILINEAR), dtype=np.float32
    )
    paper = 0.70 + 0.08 * np.linspace(-1, 1, 1200)[None, :] + np.zeros((900, 1))
    paper[200:500, 650:950] -= 0.5 * ink
    paper += generator.normal(0, 0.02, paper.shape)
    gray = np.uint8(np.clip(paper, 0, 1) * 255)
    return Image.fromarray(np.stack([gray] * 3, axis=-1))


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    if not (MNIST_DIR / "9.json").is_file():
        pytest.skip(f"MNIST digits missing at {MNIST_DIR}: run `make test-deps`")
    split = load_digits(MNIST_DIR)
    return split.test_images[::SAMPLE_STEP], split.test_labels[::SAMPLE_STEP]


def correct_predictions(images: list[Image.Image], labels: np.ndarray) -> int:
    """How many user ``images`` of held-out digits the committed model gets after preprocessing."""
    model, normalization = load_lenet5(COMMITTED_WEIGHTS)
    prepared = np.stack([mnist_style(image) for image in images])
    return int((predict(model, prepared, normalization) == labels).sum())


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (100, 80), "white"),
        Image.new("RGBA", (120, 120), (0, 0, 0, 0)),
        Image.new("L", (50, 50), 0),
        Image.new("L", (40, 30), 128),
        Image.new("L", (1, 1), 255),
        Image.fromarray(np.random.default_rng(0).integers(195, 215, (64, 64), dtype=np.uint8)),
    ],
    ids=["white", "transparent", "black", "grey", "one-pixel", "faint-noise"],
)
def test_blank_image_becomes_zeros(image: Image.Image) -> None:
    result = mnist_style(image)
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    assert not result.any()


def test_square_blob_is_scaled_to_20_px_and_centred_on_14_14() -> None:
    result = mnist_style(white_canvas_with_black_shape(100, 60, (10, 5, 40, 35)))
    row, column = centre_of_mass(result)
    assert abs(row - 14) <= 0.5
    assert abs(column - 14) <= 0.5
    assert ink_box(result) == (20, 20)
    assert result.max() == 1.0


def test_tall_bar_keeps_its_aspect_ratio() -> None:
    result = mnist_style(white_canvas_with_black_shape(200, 200, (20, 120, 140, 180)))
    assert ink_box(result) == (20, 10)
    row, column = centre_of_mass(result)
    assert abs(row - 14) <= 0.5
    assert abs(column - 14) <= 0.5


def test_lopsided_shape_is_centred_by_mass_not_by_box() -> None:
    pixels = np.full((90, 90), 255, dtype=np.uint8)
    pixels[10:80, 10:20] = 0
    pixels[70:80, 10:80] = 0
    result = mnist_style(Image.fromarray(pixels))
    row, column = centre_of_mass(result)
    assert abs(row - 14) <= 0.5
    assert abs(column - 14) <= 0.5
    box_rows, box_columns = np.nonzero(result)
    assert (box_rows.min() + box_rows.max()) / 2 < 13
    assert (box_columns.min() + box_columns.max()) / 2 > 15


def test_light_on_dark_gives_the_same_result_as_dark_on_light() -> None:
    image = white_canvas_with_black_shape(80, 120, (15, 30, 60, 50))
    inverted = Image.fromarray(255 - np.asarray(image))
    np.testing.assert_array_equal(mnist_style(inverted), mnist_style(image))


def test_dark_ink_on_dim_paper_is_not_inverted() -> None:
    bright = white_canvas_with_black_shape(80, 80, (10, 20, 70, 50))
    dim = Image.fromarray(np.where(np.asarray(bright) == 255, 100, 25).astype(np.uint8))
    np.testing.assert_allclose(mnist_style(dim), mnist_style(bright), rtol=0, atol=1e-6)


def test_lighting_gradient_does_not_count_as_ink() -> None:
    levels = np.linspace(130, 230, 400)[None, :] + np.zeros((300, 1))
    levels[100:220, 250:310] -= 110
    result = mnist_style(Image.fromarray(levels.astype(np.uint8)))
    assert ink_box(result) == (20, 10)


def test_transparent_canvas_equals_the_same_ink_on_white(
    held_out: tuple[np.ndarray, np.ndarray],
) -> None:
    for digit in held_out[0]:
        np.testing.assert_array_equal(
            mnist_style(drawn_on_transparent_canvas(digit)), mnist_style(drawn_on_canvas(digit))
        )


def test_a_speck_far_from_the_digit_is_ignored() -> None:
    image = white_canvas_with_black_shape(150, 150, (40, 40, 100, 70))
    specked = np.asarray(image).copy()
    specked[140, 5] = 0
    np.testing.assert_array_equal(mnist_style(Image.fromarray(specked)), mnist_style(image))


def test_hairline_drawing_is_not_mistaken_for_blank() -> None:
    pixels = np.full((200, 200), 255, dtype=np.uint8)
    pixels[np.arange(50, 150), np.arange(50, 150)] = 0
    result = mnist_style(Image.fromarray(pixels))
    rows, columns = np.nonzero(result)
    top, left = rows.min(), columns.min()
    assert ink_box(result) == (20, 20)
    assert (np.diag(result[top : top + 20, left : left + 20]) > 0).all()


def test_mnist_digits_pass_almost_unchanged(held_out: tuple[np.ndarray, np.ndarray]) -> None:
    digits, labels = held_out
    images = [as_8_bit_image(digit) for digit in digits]
    prepared = np.stack([mnist_style(image) for image in images])
    assert float(np.abs(prepared - digits).mean()) == pytest.approx(
        MNIST_ROUND_TRIP_ERROR, abs=5e-5
    )
    assert correct_predictions(images, labels) == MNIST_INPUT_CORRECT


def test_held_out_digits_drawn_on_a_canvas_keep_their_labels(
    held_out: tuple[np.ndarray, np.ndarray],
) -> None:
    digits, labels = held_out
    assert correct_predictions([drawn_on_canvas(digit) for digit in digits], labels) == (
        CANVAS_CORRECT
    )


def test_photographed_held_out_digits_keep_their_labels(
    held_out: tuple[np.ndarray, np.ndarray],
) -> None:
    digits, labels = held_out[0][::5], held_out[1][::5]
    assert labels.tolist() == list(range(10))
    photos = [photographed(digit, seed=index) for index, digit in enumerate(digits)]
    assert correct_predictions(photos, labels) == PHOTO_CORRECT
