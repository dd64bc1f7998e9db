"""Random twins and the trained-vs-random first-layer comparison."""

import numpy as np
import pytest
import torch
from torch import nn

from app.core.attribution.random_filters import (
    compare_first_layer_filters,
    first_conv_layer,
    neighbour_correlation,
    raw_neighbour_correlation,
    smoothness_verdict,
)
from app.core.attribution.random_init import random_init_copy, trained_copy
from app.core.layer_program import program_of
from app.core.registry import LoadedModel, describe_layers
from tests.helpers import TinyCNN, tiny_cnn


def test_raw_neighbour_correlation_by_hand() -> None:
    checkerboard = np.array([[[[1.0, -1.0], [-1.0, 1.0]]]])  # every neighbour has the other sign
    assert raw_neighbour_correlation(checkerboard) == pytest.approx(-1.0)
    # Columns -1, 0, 1 in every row: horizontal pairs (-1,0),(0,1) ×3 rows give Σab = 0,
    # vertical pairs (v,v) for v in -1,0,1 ×2 give Σab = 4; Σa² = Σb² = 3 + 4.
    ramp = np.tile(np.array([-1.0, 0.0, 1.0]), (3, 1))[None, None]
    assert raw_neighbour_correlation(ramp) == pytest.approx(4 / 7)
    assert raw_neighbour_correlation(np.full((2, 3, 3, 3), 5.0)) == 0.0


def test_neighbour_correlation_is_corrected_for_chance() -> None:
    """(r − r₀) / (1 − r₀) with r₀ = −1/(n − 1): 2×2 slices have r₀ = −1/3, 3×3 ones −1/8."""
    checkerboard = np.array([[[[1.0, -1.0], [-1.0, 1.0]]]])
    assert neighbour_correlation(checkerboard) == pytest.approx((-1 + 1 / 3) / (1 + 1 / 3))
    ramp = np.tile(np.array([-1.0, 0.0, 1.0]), (3, 1))[None, None]
    assert neighbour_correlation(ramp) == pytest.approx((4 / 7 + 1 / 8) / (1 + 1 / 8))
    assert neighbour_correlation(np.full((2, 3, 3, 3), 5.0)) == 0.0
    assert neighbour_correlation(np.ones((4, 1, 1, 1))) == 0.0


def test_independent_weights_score_zero_on_average_for_any_kernel_size() -> None:
    """The claim the panel makes ("0 is what unrelated weights give"), checked by shuffling each
    slice of a real-looking bank 400 times: the mean is 0 where the raw correlation is −1/(n−1)."""
    rng = np.random.default_rng(0)
    for size in (3, 5):
        bank = rng.normal(size=(32, 3, size, size))
        raw, corrected = [], []
        for _ in range(400):
            flat = bank.reshape(-1, size * size).copy()
            rng.permuted(flat, axis=1, out=flat)
            shuffled = flat.reshape(bank.shape)
            raw.append(raw_neighbour_correlation(shuffled))
            corrected.append(neighbour_correlation(shuffled))
        assert np.mean(raw) == pytest.approx(-1 / (size * size - 1), abs=0.005)
        assert np.mean(corrected) == pytest.approx(0.0, abs=0.005)


def test_the_verdict_says_only_what_the_numbers_support() -> None:
    assert smoothness_verdict(0.42, 0.08) == "smooth"  # LeNet-5's conv1 beside its twin
    assert smoothness_verdict(0.11, 0.02) == "slightly_smoother"  # EfficientNet-Lite0's stem
    assert smoothness_verdict(0.35, 0.33) == "not_smoother"
    assert smoothness_verdict(0.01, 0.10) == "not_smoother"


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


def test_a_builder_that_brings_its_own_weights_still_gives_a_fresh_twin() -> None:
    """A spec's entry point may return trained (or self-seeded) weights; the twin must not."""
    trained = tiny_cnn(seed=0)
    twin = random_init_copy(lambda: tiny_cnn(seed=0), seed=3)
    fresh = random_init_copy(TinyCNN, seed=3)
    for name, value in twin.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[name]), name
    assert not torch.equal(twin.features[0].weight, trained.features[0].weight)
    assert not torch.equal(twin.features[1].running_var, trained.features[1].running_var)


def test_trained_copy_holds_the_same_weights_in_a_separate_module() -> None:
    model = tiny_cnn()
    copy = trained_copy(model, TinyCNN)
    assert copy is not model
    for name, value in model.state_dict().items():
        assert torch.equal(value, copy.state_dict()[name])
        assert value.data_ptr() != copy.state_dict()[name].data_ptr()
    assert not copy.training


class LateStem(nn.Module):
    """The head conv is registered first, but the stem conv is the one that sees pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(4, 2, 1)
        self.stem = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x)).mean((2, 3))


def loaded(module: nn.Module) -> LoadedModel:
    program = program_of(module.eval())
    layers = describe_layers(program, (3, 8, 8))
    return LoadedModel(None, module, ["a", "b"], torch.device("cpu"), layers, "", program)  # type: ignore[arg-type]


def test_the_first_convolution_is_the_first_one_the_forward_runs() -> None:
    assert first_conv_layer(loaded(LateStem())) == "stem"
    assert first_conv_layer(loaded(tiny_cnn())) == "features.0"
    with pytest.raises(ValueError, match=r"no nn\.Conv2d"):
        first_conv_layer(loaded(nn.Sequential(nn.Flatten(), nn.Linear(192, 2))))


def test_comparison_uses_that_convolution_of_both() -> None:
    model = tiny_cnn()
    twin = random_init_copy(TinyCNN, seed=0)
    comparison = compare_first_layer_filters(model, twin, "features.0")
    assert comparison.layer == "features.0"
    np.testing.assert_array_equal(
        comparison.trained.weight, model.features[0].weight.detach().numpy()
    )
    np.testing.assert_array_equal(comparison.random.weight, twin.features[0].weight.numpy())
    assert comparison.trained_neighbour_correlation == pytest.approx(
        neighbour_correlation(model.features[0].weight.detach().numpy())
    )
