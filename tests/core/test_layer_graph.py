"""layer_inputs: each layer's source layer and hidden zero padding, checked by recomputing convs."""

import torch
import torch.nn.functional as F
from torch import nn

from app.core.architectures.efficientnet_lite import build_efficientnet_lite0
from app.core.capture import ActivationCapture
from app.core.layer_graph import MODEL_INPUT, LayerInput, layer_inputs


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.relu(self.conv(x))


class Toy(nn.Module):
    """Pads, a block, a functional op and pass-through modules between visible layers."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 3))  # left, right, top, bottom
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.block = Residual()
        self.after_functional = nn.Conv2d(4, 2, 1)
        self.odd_pad = nn.ConstantPad2d(1, 0.5)
        self.after_odd_pad = nn.Conv2d(2, 2, 1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(2 * 7 * 7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.conv(self.pad(x)))
        x = self.after_functional(torch.tanh(x))
        x = self.after_odd_pad(self.odd_pad(x))
        return self.fc(self.dropout(self.flatten(x)))


def test_toy_sources_padding_and_untraceable_inputs() -> None:
    model = Toy().eval()
    inputs = layer_inputs(model, (1, 9, 8))
    assert inputs == {
        "conv": LayerInput(MODEL_INPUT, (0, 1, 3, 2)),
        "block.conv": LayerInput("conv"),
        "block.relu": LayerInput("block.conv"),
        "block": LayerInput("conv"),
        "after_functional": None,
        "after_odd_pad": None,
        "fc": LayerInput("after_odd_pad"),
    }
    assert all(not module._forward_hooks for module in model.modules())


def test_stacked_pads_add_up() -> None:
    model = nn.Sequential(nn.ZeroPad2d(1), nn.ZeroPad2d((0, 2, 3, 0)), nn.Conv2d(1, 1, 3)).eval()
    assert layer_inputs(model, (1, 5, 5)) == {"2": LayerInput(MODEL_INPUT, (4, 1, 1, 3))}


def test_every_efficientnet_conv_recomputes_from_its_source() -> None:
    """conv(pad(source output)) == captured conv output for all convs of the real architecture."""
    torch.manual_seed(0)
    model = build_efficientnet_lite0().eval()
    image = torch.randn(1, 3, 224, 224)
    sources = layer_inputs(model, (3, 224, 224))
    with torch.inference_mode(), ActivationCapture(model) as capture:
        capture.run(image)
    activations = {**capture.activations, MODEL_INPUT: image}
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert set(convs) <= set(sources)
    for name, conv in convs.items():
        source = sources[name]
        top, left, bottom, right = source.padding
        padded = F.pad(activations[source.source], (left, right, top, bottom))
        with torch.inference_mode():
            expected = conv(padded)
        torch.testing.assert_close(activations[name], expected, rtol=0, atol=0)
    assert sources["_conv_stem"] == LayerInput(MODEL_INPUT, (0, 0, 1, 1))
    assert sources["_blocks.1._depthwise_conv"] == LayerInput("_blocks.1._expand_act", (0, 0, 1, 1))
    assert sources["_blocks.2"] == LayerInput("_blocks.1")
    assert sources["_fc"] == LayerInput("_avg_pooling")
