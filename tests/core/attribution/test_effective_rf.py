"""Effective receptive field: zero outside the theoretical box, non-zero at its centre."""

import pytest
import torch
from torch import nn

from app.core.attribution.effective_rf import effective_receptive_field, mass_square_size
from app.core.receptive_field import Box, compute_receptive_fields, receptive_field_box
from tests.core.attribution.model_state import assert_unchanged, snapshot

INPUT_SHAPE = (2, 20, 20)


def conv_stack() -> nn.Module:
    """conv3, tanh, pool2, dilated padded conv3, tanh, strided conv3: four kinds of boxes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, padding=2, dilation=2),
        nn.Tanh(),
        nn.Conv2d(4, 2, 3, stride=2),
    ).eval()


def every_third(size: int) -> list[int]:
    """Units 0, 3, 6, … and the last one: both edges and the interior, at a ninth of the cost."""
    return sorted({*range(0, size, 3), size - 1})


@pytest.mark.parametrize("layer", ["0", "2", "4", "5"])
def test_gradient_is_zero_outside_the_theoretical_box(layer: str) -> None:
    model = conv_stack().double()
    image = torch.randn(
        INPUT_SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    field = compute_receptive_fields(model, INPUT_SHAPE)[layer].rf
    with torch.no_grad():
        height, width = model[: int(layer) + 1](image[None]).shape[2:]
    for y in every_third(height):
        for x in every_third(width):
            result = effective_receptive_field(model, image, layer, field, y, x, channel=1)
            box = receptive_field_box(field, y, x, (20, 20))
            assert result.box == box
            outside = torch.ones(20, 20, dtype=torch.bool)
            outside[max(box.top, 0) : box.bottom + 1, max(box.left, 0) : box.right + 1] = False
            assert float(result.gradient[outside].abs().sum()) == 0.0
            assert result.mass_in_box == pytest.approx(1.0, abs=1e-12)
            centre = ((box.top + box.bottom) // 2, (box.left + box.right) // 2)
            assert float(result.gradient[centre]) > 0.0


def test_gradient_equals_autograd_of_the_unit_summed_over_channels() -> None:
    model = conv_stack().double()
    image = torch.randn(
        INPUT_SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    field = compute_receptive_fields(model, INPUT_SHAPE)["4"].rf
    leaf = image.clone().requires_grad_(True)
    unit = model[:5](leaf[None])[0, :, 3, 4].sum()
    (expected,) = torch.autograd.grad(unit, leaf)

    result = effective_receptive_field(model, image, "4", field, 3, 4)

    assert result.channel is None
    assert result.activation == pytest.approx(float(unit.detach()), abs=1e-12)
    torch.testing.assert_close(result.gradient, expected.abs().sum(dim=0), rtol=0, atol=1e-12)


def test_mass_square_size_by_hand() -> None:
    odd = torch.zeros(9, 9)
    odd[4, 4], odd[4, 6] = 90.0, 10.0  # 90 % in the centre pixel, the rest 2 px to the right
    assert mass_square_size(odd, Box(0, 0, 8, 8)) == 5
    assert mass_square_size(odd, Box(0, 0, 8, 8), fraction=0.9) == 1
    even = torch.zeros(8, 8)
    even[3, 3], even[4, 4] = 50.0, 50.0  # the centre 2×2 of an 8×8 box
    assert mass_square_size(even, Box(0, 0, 7, 7)) == 2
    assert mass_square_size(torch.zeros(8, 8), Box(0, 0, 7, 7)) == 0


def test_model_unchanged_and_bad_units_rejected() -> None:
    model = conv_stack()
    before = snapshot(model)
    field = compute_receptive_fields(model, INPUT_SHAPE)["5"].rf
    image = torch.zeros(INPUT_SHAPE)
    effective_receptive_field(model, image, "5", field, 0, 0)
    with pytest.raises(ValueError, match="units y"):
        effective_receptive_field(model, image, "5", field, 9, 0)
    with pytest.raises(ValueError, match=r"channels 0\.\.1"):
        effective_receptive_field(model, image, "5", field, 0, 0, channel=2)
    assert_unchanged(model, before)
