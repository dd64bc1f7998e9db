"""Activation maximization raises the target channel far above the starting noise."""

import numpy as np
import pytest
import torch

from app.core.attribution.feature_vis import FeatureVisOptions, visualize_channel
from app.core.attribution.hooks import forward_to_layer
from tests.core.attribution.model_state import assert_unchanged, snapshot
from tests.helpers import TINY_INPUT_SHAPE, tiny_cnn

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
FAST = FeatureVisOptions(steps=30, learning_rate=0.5, jitter=1)


def channel_mean(model: torch.nn.Module, layer: str, channel: int, image: np.ndarray) -> float:
    """The objective recomputed from the returned uint8 image, as a client would see it."""
    pixels = torch.from_numpy(image).float().permute(2, 0, 1) / 255.0
    batch = ((pixels - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])[None]
    relu = isinstance(model.get_submodule(layer), torch.nn.ReLU)  # objective: the ReLU's input
    with torch.no_grad():
        return float(forward_to_layer(model, layer, batch, use_input=relu)[0, channel].mean())


@pytest.mark.parametrize(("layer", "channel"), [("block", 0), ("features.2", 1)])
def test_target_channel_rises_by_a_large_factor(layer: str, channel: int) -> None:
    model = tiny_cnn()
    result = visualize_channel(model, layer, channel, TINY_INPUT_SHAPE, MEAN, STD, FAST)
    start = result.start_activation
    assert start > 0
    assert result.final_activation > 10 * abs(start)
    assert result.image.shape == (8, 8, 3) and result.image.dtype == np.uint8
    assert channel_mean(model, layer, channel, result.image) == pytest.approx(
        result.final_activation, abs=0.05 * abs(result.final_activation)
    )


def test_a_silent_relu_channel_still_lights_up() -> None:
    """Channel 0 of the ReLU is 0 on the starting noise: its input carries the gradient."""
    model = tiny_cnn()
    result = visualize_channel(model, "features.2", 0, TINY_INPUT_SHAPE, MEAN, STD, FAST)
    assert result.start_activation < 0 < result.final_activation
    assert channel_mean(model, "features.2", 0, result.image) > 0


def test_vector_layers_grey_models_and_reproducibility() -> None:
    model = tiny_cnn()
    first = visualize_channel(model, "classifier", 3, TINY_INPUT_SHAPE, MEAN, STD, FAST)
    again = visualize_channel(model, "classifier", 3, TINY_INPUT_SHAPE, MEAN, STD, FAST)
    assert first.final_activation > first.start_activation + 1.0
    np.testing.assert_array_equal(first.image, again.image)
    grey = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).eval()
    result = visualize_channel(grey, "0", 1, (1, 6, 6), (0.1,), (0.3,), FeatureVisOptions(steps=2))
    assert result.image.shape == (6, 6)


def test_model_unchanged_and_bad_channels_rejected() -> None:
    model = tiny_cnn()
    before = snapshot(model)
    visualize_channel(model, "block", 1, TINY_INPUT_SHAPE, MEAN, STD, FeatureVisOptions(steps=2))
    with pytest.raises(ValueError, match="channels"):
        visualize_channel(
            model, "block", 4, TINY_INPUT_SHAPE, MEAN, STD, FeatureVisOptions(steps=1)
        )
    assert_unchanged(model, before)


class ReluBlockNet(torch.nn.Module):
    """A block ending in ``F.relu`` whose channel 0 is silent on grey noise (bias -0.5)."""

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.relu(self.conv(x))

    def __init__(self) -> None:
        super().__init__()
        self.block = self.Block()
        self.head = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x).mean((2, 3)))


def test_a_block_ending_in_a_functional_relu_optimises_the_relus_input() -> None:
    torch.manual_seed(0)
    model = ReluBlockNet().eval()
    with torch.no_grad():
        model.block.conv.bias.copy_(torch.tensor([-0.5, 0.0]))
    result = visualize_channel(model, "block", 0, TINY_INPUT_SHAPE, MEAN, STD, FAST)
    assert result.start_activation < -0.2 < 0.1 < result.final_activation
