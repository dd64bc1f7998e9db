"""Each layer's source layer and hidden zero padding, checked by recomputing convs.

The traced program (``LayerProgram``) finds them in the fx graph; ``layer_inputs`` (probe forward
with hooks) is the fallback for untraceable models. Both are checked on the same models.
"""

import torch
import torch.nn.functional as F
from torch import nn

from app.core.architectures.efficientnet_lite import build_efficientnet_lite0
from app.core.capture import ActivationCapture
from app.core.layer_graph import MODEL_INPUT, LayerInput, layer_inputs
from app.core.layer_program import LayerProgram


def program_sources(model: nn.Module) -> dict[str, LayerInput | None]:
    """Module layers' sources as the traced program finds them."""
    program = LayerProgram.build(model)
    assert program.method == "fx"
    return {
        layer.name: LayerInput(layer.source, layer.padding) if layer.source else None
        for layer in program.layers
        if layer.module is not None
    }


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
    """Hooks see only modules: the functional tanh hides after_functional's source."""
    model = Toy().eval()
    inputs = layer_inputs(model, (1, 9, 8))
    assert inputs == {
        "conv": LayerInput(MODEL_INPUT, (0, 1, 3, 2)),
        "block.conv": LayerInput("conv"),
        "block.relu": LayerInput("block.conv"),
        "block": LayerInput("conv"),
        "after_functional": None,
        "after_odd_pad": None,
        "flatten": LayerInput("after_odd_pad"),
        "fc": LayerInput("flatten"),
    }
    assert all(not module._forward_hooks for module in model.modules())


def test_toy_sources_in_the_traced_program() -> None:
    """The traced graph also sees the functional tanh (a layer of its own) and the block's add."""
    program = LayerProgram.build(Toy().eval())
    assert [layer.name for layer in program.layers] == [
        "conv",
        "block.conv",
        "block.relu",
        "block.add",
        "block",
        "tanh",
        "after_functional",
        "after_odd_pad",
        "flatten",
        "fc",
    ]
    assert program_sources(Toy().eval()) == {
        "conv": LayerInput(MODEL_INPUT, (0, 1, 3, 2)),
        "block.conv": LayerInput("conv"),
        "block.relu": LayerInput("block.conv"),
        "block": LayerInput("conv"),
        "after_functional": LayerInput("tanh"),
        "after_odd_pad": None,
        "flatten": LayerInput("after_odd_pad"),
        "fc": LayerInput("flatten"),
    }


def test_stacked_pads_add_up() -> None:
    model = nn.Sequential(nn.ZeroPad2d(1), nn.ZeroPad2d((0, 2, 3, 0)), nn.Conv2d(1, 1, 3)).eval()
    assert layer_inputs(model, (1, 5, 5)) == {"2": LayerInput(MODEL_INPUT, (4, 1, 1, 3))}
    assert program_sources(model) == {"2": LayerInput(MODEL_INPUT, (4, 1, 1, 3))}


class FunctionalPads(nn.Module):
    """``F.pad`` with zeros counts as hidden padding; reflect padding cannot be written so."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3)
        self.b = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(F.pad(x, (1, 2, 3, 4)))
        return self.b(F.pad(x, (1, 1, 1, 1), mode="reflect"))


def test_functional_pads() -> None:
    assert program_sources(FunctionalPads().eval()) == {
        "a": LayerInput(MODEL_INPUT, (3, 1, 4, 2)),
        "b": None,
    }


def test_every_efficientnet_conv_recomputes_from_its_source() -> None:
    """conv(pad(source output)) == captured conv output for all convs of the real architecture."""
    torch.manual_seed(0)
    model = build_efficientnet_lite0().eval()
    image = torch.randn(1, 3, 224, 224)
    sources = program_sources(model)
    assert sources == {k: v for k, v in layer_inputs(model, (3, 224, 224)).items() if k in sources}
    program = LayerProgram.build(model)
    capture = ActivationCapture(program)
    with torch.inference_mode():
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
    assert sources["_fc"] == LayerInput("_flatten")
