"""Heatmap colouring: which value becomes which colour."""

import numpy as np

from app.core.attribution.colormap import (
    DIVERGING_ANCHORS,
    OVERLAY_MAX_ALPHA,
    SEQUENTIAL_ANCHORS,
    diverging_png,
    overlay_png,
    scale_by_max,
    sequential_png,
)
from tests.helpers import decode_png


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(decode_png(png))


def test_scale_by_max_keeps_zero_at_zero() -> None:
    np.testing.assert_allclose(scale_by_max(np.array([0.0, 2.0, 4.0])), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(scale_by_max(np.zeros(3)), np.zeros(3))
    # The 0.5 quantile of 0, 1, 2, 3, 100 is 2: everything from 2 up saturates.
    np.testing.assert_allclose(
        scale_by_max(np.array([0.0, 1.0, 2.0, 3.0, 100.0]), 0.5), [0, 0.5, 1, 1.5, 50]
    )


def test_sequential_ends_are_the_first_and_last_anchor() -> None:
    image = pixels(sequential_png(np.array([[0.0, 3.0], [1.5, 3.0]])))
    assert image.shape == (2, 2, 3)
    np.testing.assert_array_equal(image[0, 0], SEQUENTIAL_ANCHORS[0])
    np.testing.assert_array_equal(image[0, 1], SEQUENTIAL_ANCHORS[-1])
    np.testing.assert_array_equal(image[1, 0], SEQUENTIAL_ANCHORS[2])  # the middle anchor


def test_overlay_is_transparent_where_cold() -> None:
    image = pixels(overlay_png(np.array([[0.0, 1.0]])))
    assert image.shape == (1, 2, 4)
    assert image[0, 0, 3] == 0
    assert image[0, 1, 3] == OVERLAY_MAX_ALPHA


def test_diverging_is_symmetric_around_white() -> None:
    image = pixels(diverging_png(np.array([[-2.0, 0.0, 1.0, 2.0]])))
    np.testing.assert_array_equal(image[0, 0], DIVERGING_ANCHORS[0])
    np.testing.assert_array_equal(image[0, 1], DIVERGING_ANCHORS[1])
    np.testing.assert_array_equal(image[0, 3], DIVERGING_ANCHORS[2])
    flat = pixels(diverging_png(np.zeros((1, 2))))
    np.testing.assert_array_equal(flat[0, 0], DIVERGING_ANCHORS[1])
