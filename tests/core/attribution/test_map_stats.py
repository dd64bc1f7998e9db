"""The numbers the panel's sentences quote: speckle, blank pixels and the heat on them."""

import numpy as np
import pytest
import torch

from app.core.attribution.map_stats import blank_mask, heat_share, speckle


def test_speckle_by_hand() -> None:
    # Scaled by its max (2): [[0, 1], [1, 0]]. Mean 0.5; all four neighbour pairs differ by 1.
    assert speckle(np.array([[0.0, 2.0], [2.0, 0.0]])) == pytest.approx(1 / 0.5)
    # Column ramp 0, 1, 2 (÷2): horizontal pairs differ by 0.5 (6 of them), vertical by 0 (6).
    ramp = np.tile(np.array([0.0, 1.0, 2.0]), (3, 1))
    assert speckle(ramp) == pytest.approx((6 * 0.5 / 12) / 0.5)
    assert speckle(np.full((4, 4), 3.0)) == 0.0
    assert speckle(np.zeros((4, 4))) == 0.0


def test_speckle_is_measured_on_the_map_as_drawn() -> None:
    """One extreme pixel is clipped at the quantile, as the PNG shows it."""
    spiky = np.ones((10, 10))
    spiky[0, 0] = 1000.0
    assert speckle(spiky, quantile=0.9) == pytest.approx(0.0)
    assert speckle(spiky) > 1.0


def test_noise_is_rough_and_a_smooth_blob_is_not() -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((64, 64))
    y, x = np.mgrid[:64, :64]
    blob = np.exp(-((y - 32) ** 2 + (x - 32) ** 2) / 200.0)
    assert speckle(noise) > 5 * speckle(blob)


def test_blank_pixels_are_found_in_pixel_units_and_heat_on_them_is_a_share() -> None:
    pixels = torch.tensor([[[0.0, 0.5], [0.0, 1.0]]])  # one channel, 2×2
    inputs = (pixels - 0.1307) / 0.3081  # normalised like an MNIST digit
    mask = blank_mask(inputs, (0.1307,), (0.3081,), 0.0)
    assert mask.tolist() == [[True, False], [True, False]]
    heat = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert heat_share(heat, mask) == pytest.approx(4 / 10)
    assert heat_share(torch.zeros(2, 2), mask) == 0.0
    colour = torch.stack([torch.full((2, 2), 0.5), torch.tensor([[0.5, 0.2], [0.5, 0.5]])])
    assert blank_mask(colour, (0.0, 0.0), (1.0, 1.0), 0.5).tolist() == [
        [True, False],
        [True, True],
    ]
