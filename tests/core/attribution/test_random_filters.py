"""Random twins and the trained-vs-random first-layer comparison."""

import numpy as np
import pytest
import torch

from app.core.attribution.random_filters import compare_first_layer_filters, neighbour_correlation
from app.core.attribution.random_init import first_conv_layer, random_init_copy, trained_copy
from tests.helpers import TinyCNN, tiny_cnn


def test_neighbour_correlation_by_hand() -> None:
    checkerboard = np.array([[[[1.0, -1.0], [-1.0, 1.0]]]])  # every neighbour has the other sign
    assert neighbour_correlation(checkerboard) == pytest.approx(-1.0)
    # Columns -1, 0, 1 in every row: horizontal pairs (-1,0),(0,1) ×3 rows give Σab = 0,
    # vertical pairs (v,v) for v in -1,0,1 ×2 give Σab = 4; Σa² = Σb² = 3 + 4.
    ramp = np.tile(np.array([-1.0, 0.0, 1.0]), (3, 1))[None, None]
    assert neighbour_correlation(ramp) == pytest.approx(4 / 7)
    assert neighbour_correlation(np.full((2, 3, 3, 3), 5.0)) == 0.0
    assert neighbour_correlation(np.ones((4, 1, 1, 1))) == 0.0


def test_random_twin_is_reproducible_fresh_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(42)
    expected_next = torch.rand(2)
    torch.manual_seed(42)
    first = random_init_copy(TinyCNN, seed=3)
    second = random_init_copy(TinyCNN, seed=3)
    other = random_init_copy(TinyCNN, seed=4)
    torch.testing.assert_close(torch.rand(2), expected_next)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name])
    assert not torch.equal(first.features[0].weight, other.features[0].weight)
    assert not first.training
    assert not any(p.requires_grad for p in first.parameters())


def test_trained_copy_holds_the_same_weights_in_a_separate_module() -> None:
    model = tiny_cnn()
    copy = trained_copy(model, TinyCNN)
    assert copy is not model
    for name, value in model.state_dict().items():
        assert torch.equal(value, copy.state_dict()[name])
        assert value.data_ptr() != copy.state_dict()[name].data_ptr()
    assert not copy.training


def test_comparison_uses_the_first_convolution_of_both() -> None:
    model = tiny_cnn()
    twin = random_init_copy(TinyCNN, seed=0)
    comparison = compare_first_layer_filters(model, twin)
    assert first_conv_layer(model) == comparison.layer == "features.0"
    np.testing.assert_array_equal(
        comparison.trained.weight, model.features[0].weight.detach().numpy()
    )
    np.testing.assert_array_equal(comparison.random.weight, twin.features[0].weight.numpy())
    assert comparison.trained_neighbour_correlation == pytest.approx(
        neighbour_correlation(model.features[0].weight.detach().numpy())
    )
    with pytest.raises(ValueError, match="no Conv2d"):
        first_conv_layer(torch.nn.Linear(2, 2))
