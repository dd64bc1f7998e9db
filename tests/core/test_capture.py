"""ActivationCapture on seeded toy CNNs, through the fx program and through the hooks fallback.

References never use the program: functional ops on the weights, a numpy correlation, and, for
in-place ops, whether the tensor at a tap still holds its value once the forward has ended.
"""

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.capture import ActivationCapture, capture_layers
from app.core.layer_kinds import layer_kind
from app.core.layer_program import LayerProgram
from tests.helpers import TinyCNN, tiny_cnn, tiny_inputs

METHODS = ["fx", "hooks"]
TINY_LAYERS = {  # name: (kind, type, module), in execution order
    "features.0": ("conv", "Conv2d", "features.0"),
    "features.1": ("batchnorm", "BatchNorm2d", "features.1"),
    "features.2": ("activation", "ReLU", "features.2"),
    "features.3": ("pool", "MaxPool2d", "features.3"),
    "block.conv": ("conv", "Conv2d", "block.conv"),
    "block.relu": ("activation", "ReLU", "block.relu"),
    "block.add": ("add", "add", None),  # `x + self.relu(...)`: no module, the fx program sees it
    "block": ("block", "ResidualBlock", "block"),
    "flatten": ("flatten", "Flatten", "flatten"),
    "classifier": ("linear", "Linear", "classifier"),
}
Tiny = tuple[TinyCNN, LayerProgram, list[str]]


class BranchingTinyCNN(TinyCNN):
    """TinyCNN whose forward decides in Python on a tensor's value, so fx cannot trace it."""

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        if features.sum() > 0:  # true for every test input: ReLU then max-pool is non-negative
            features = self.block(features)
        return self.classifier(self.flatten(features))


def seeded(model: nn.Module, method: str) -> nn.Module:
    """Seeded weights; ``data_dependent`` (read by the toys' forwards) forces the hooks fallback."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    model.data_dependent = method == "hooks"
    return model.eval()


def refuse_nan(x: Tensor) -> None:
    """Python control flow on a tensor's value, as input checks do: fx cannot trace past it."""
    if torch.isnan(x).any():
        raise ValueError("NaN activations")


def manual_forward(model: TinyCNN, x: Tensor) -> dict[str, Tensor]:
    """Every visible layer's output computed with functional ops, without the modules' forwards."""
    conv, bn, block = model.features[0], model.features[1], model.block
    out = {"features.0": F.conv2d(x, conv.weight, conv.bias, padding=1)}
    out["features.1"] = F.batch_norm(
        out["features.0"], bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps
    )
    out["features.2"] = out["features.1"].clamp(min=0)
    out["features.3"] = F.max_pool2d(out["features.2"], 2)
    out["block.conv"] = F.conv2d(out["features.3"], block.conv.weight, block.conv.bias, padding=1)
    out["block.relu"] = out["block.conv"].clamp(min=0)
    out["block.add"] = out["block"] = out["features.3"] + out["block.relu"]
    out["flatten"] = out["block"].reshape(x.shape[0], -1)
    out["classifier"] = out["flatten"] @ model.classifier.weight.T + model.classifier.bias
    return out


def tripwire(module: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``module`` raise if the forward ever calls it."""

    def forward(*_: object) -> Tensor:
        raise AssertionError("the forward went on past the last wanted value")

    monkeypatch.setattr(module, "forward", forward)


@pytest.fixture(params=METHODS)
def tiny(request: pytest.FixtureRequest) -> Iterator[Tiny]:
    """TinyCNN's program, its model and the layers a full capture records, in order."""
    model = tiny_cnn()
    if request.param == "hooks":  # the same seeded weights behind an untraceable forward
        branching = BranchingTinyCNN()
        branching.load_state_dict(model.state_dict())
        model = branching.eval()
    program = LayerProgram.build(model)
    assert program.method == request.param
    order = [name for name in TINY_LAYERS if request.param == "fx" or name != "block.add"]
    yield model, program, order
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_every_layer_is_exact_and_in_execution_order(tiny: Tiny) -> None:
    model, program, order = tiny
    x = tiny_inputs(2)
    capture = ActivationCapture(program)
    with torch.no_grad():
        logits = capture.run(x)
        expected = manual_forward(model, x)
    assert capture.order == list(capture.activations) == order
    for name in order:
        assert torch.equal(capture.activations[name], expected[name]), name
    assert torch.equal(logits, expected["classifier"])


def test_first_convolution_matches_a_numpy_correlation(tiny: Tiny) -> None:
    model, program, _ = tiny
    x = tiny_inputs(1)
    with torch.no_grad():
        got = capture_layers(program, x, ["features.0"])["features.0"]
    weight = model.features[0].weight.detach().double().numpy()
    bias = model.features[0].bias.detach().double().numpy()
    padded = np.pad(x[0].double().numpy(), ((0, 0), (1, 1), (1, 1)))
    # windows[c, y, x] is the 3×3 patch of channel c under output pixel (y, x).
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    expected = np.einsum("cyxij,ocij->oyx", windows, weight) + bias[:, None, None]
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-5)


def test_layers_and_their_kinds(tiny: Tiny) -> None:
    _, program, order = tiny
    got = {layer.name: (layer.kind, layer.type, layer.module) for layer in program.layers}
    assert got == {name: TINY_LAYERS[name] for name in order}
    layers = program.by_name
    if program.method == "fx":  # inputs are tapped as read: bn reads the conv, the block is the add
        points = program.points
        assert points[layers["features.1"].input_point].reads == ("features.0",)
        assert layers["block"].point == layers["block.add"].point
        assert [points[p].reads for p in layers["block.add"].operands] == [
            ("features.3",),
            ("block.relu",),
        ]


@pytest.mark.parametrize(
    ("module", "kind"),
    [
        (nn.Conv2d(4, 4, 3, groups=4), "depthwise_conv"),
        (nn.Conv2d(4, 8, 3, groups=4), "depthwise_conv"),  # channel multiplier 2
        (nn.Conv2d(4, 8, 3, groups=2), "conv"),  # grouped, not depthwise
        (nn.Conv2d(1, 1, 3), "conv"),
        (nn.BatchNorm1d(3), "batchnorm"),
        *[(m, "norm") for m in (nn.LayerNorm(3), nn.GroupNorm(2, 4), nn.InstanceNorm2d(3))],
        (nn.LocalResponseNorm(2), "norm"),
        *[(m, "activation") for m in (nn.ReLU6(), nn.SiLU(), nn.Hardswish(), nn.Hardsigmoid())],
        *[(m, "activation") for m in (nn.Hardtanh(), nn.Mish(), nn.Softplus(), nn.PReLU())],
        *[(m, "activation") for m in (nn.SELU(), nn.CELU())],
        *[(m, "pool") for m in (nn.AdaptiveAvgPool2d(1), nn.AvgPool2d(2), nn.LPPool2d(2, 2))],
        (nn.Linear(2, 3), "linear"),
        (nn.Flatten(), "flatten"),
        *[(m, None) for m in (nn.Dropout(0.2), nn.Identity(), nn.ZeroPad2d(1), nn.Softmax(1))],
        *[(m, None) for m in (nn.ModuleList([nn.ReLU()]), nn.Sequential(nn.ReLU()))],
    ],
)
def test_layer_kind(module: nn.Module, kind: str | None) -> None:
    assert layer_kind(module) == kind


def test_stop_early_records_only_the_wanted_layers_and_skips_the_rest(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, program, _ = tiny
    x = tiny_inputs(1)
    with torch.no_grad():
        expected = manual_forward(model, x)
    tripwire(model.features[3], monkeypatch)  # the first module after the last wanted layer
    c = ActivationCapture(program, ["features.2", "features.0"], stop_early=True)
    with torch.no_grad():
        assert c.run(x) is None
    assert c.order == list(c.activations) == ["features.0", "features.2"]
    assert all(torch.equal(c.activations[name], expected[name]) for name in c.order)


@pytest.mark.parametrize("names", [["block", "features.1"], []])
def test_a_subset_still_returns_the_output(tiny: Tiny, names: list[str]) -> None:
    model, program, _ = tiny
    x = tiny_inputs(1)
    capture = ActivationCapture(program, names, stop_early=not names)
    with torch.no_grad():
        logits = capture.run(x)
        assert torch.equal(logits, model(x))
        expected = manual_forward(model, x)
    assert capture.order == sorted(names, key=list(TINY_LAYERS).index)
    assert all(torch.equal(capture.activations[name], expected[name]) for name in names)


def test_unknown_layers_are_key_errors_naming_them(tiny: Tiny) -> None:
    _, program, _ = tiny
    with pytest.raises(KeyError, match=r"features\.9"):
        ActivationCapture(program, ["features.0", "features.9"])
    with pytest.raises(KeyError, match=r"block\.nope"):
        ActivationCapture(program, [], inputs_of=["block.nope"])
    if program.method == "fx":  # a functional layer has no single module input
        with pytest.raises(KeyError, match=r"block\.add"):
            ActivationCapture(program, [], inputs_of=["block.add"])


def test_outputs_and_inputs_are_detached(tiny: Tiny) -> None:
    _, program, order = tiny
    x = tiny_inputs(1).requires_grad_()
    capture = ActivationCapture(program, inputs_of=["features.0", "classifier"])
    logits = capture.run(x)
    assert logits.grad_fn is not None
    assert list(capture.activations) == order
    assert list(capture.inputs) == ["features.0", "classifier"]
    assert torch.equal(capture.inputs["features.0"], x.detach())
    assert torch.equal(capture.inputs["classifier"], capture.activations["flatten"])
    for tensor in [*capture.activations.values(), *capture.inputs.values()]:
        assert not tensor.requires_grad and tensor.grad_fn is None


PAD = (1, 2, 0, 1)  # F.pad order: left, right, top, bottom


class PaddedNet(nn.Module):
    """conv → tanh → zero pad → conv → flatten → the same tanh again."""

    def __init__(self, functional_pad: bool = False) -> None:
        super().__init__()
        self.functional_pad = functional_pad
        self.conv1, self.act, self.pad = nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.ZeroPad2d(PAD)
        self.conv2, self.flatten = nn.Conv2d(2, 3, 2), nn.Flatten()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.conv1(x))
        if self.data_dependent:
            refuse_nan(x)
        x = self.conv2(F.pad(x, PAD) if self.functional_pad else self.pad(x))
        return self.act(self.flatten(x))


def padded_reference(model: PaddedNet, x: Tensor) -> dict[str, Tensor]:
    out = {"conv1": F.conv2d(x, model.conv1.weight, model.conv1.bias, padding=1)}
    out["act"] = torch.tanh(out["conv1"])
    out["padded"] = F.pad(out["act"], PAD)
    out["conv2"] = F.conv2d(out["padded"], model.conv2.weight, model.conv2.bias)
    out["flatten"] = out["conv2"].flatten(1)
    out["act_1"] = torch.tanh(out["flatten"])
    return out


@pytest.mark.parametrize("method", METHODS)
def test_a_module_called_twice(method: str) -> None:
    model = seeded(PaddedNet(), method)
    program = LayerProgram.build(model)
    x = torch.randn((2, 1, 4, 5), generator=torch.Generator().manual_seed(5))
    capture = ActivationCapture(program)
    with torch.no_grad():
        capture.run(x)
        expected = padded_reference(model, x)
    # Each call is a layer of the fx program; the hooks fallback keeps the first call only.
    order = ["conv1", "act", "conv2", "flatten"] + (["act_1"] if method == "fx" else [])
    assert capture.order == order
    assert all(torch.equal(capture.activations[name], expected[name]) for name in order)
    if method == "fx":
        assert program.by_name["act_1"].module == "act"


@pytest.mark.parametrize("functional_pad", [False, True], ids=["ZeroPad2d", "F.pad"])
@pytest.mark.parametrize("method", METHODS)
def test_inputs_of_records_the_padded_tensor_a_conv_received(
    method: str, functional_pad: bool
) -> None:
    model = seeded(PaddedNet(functional_pad), method)
    program = LayerProgram.build(model)
    x = torch.randn((2, 1, 4, 5), generator=torch.Generator().manual_seed(5))
    capture = ActivationCapture(program, ["conv2"], inputs_of=["conv2"])
    with torch.no_grad():
        capture.run(x)
        expected = padded_reference(model, x)
    assert capture.inputs["conv2"].shape == (2, 2, 5, 8)
    assert torch.equal(capture.inputs["conv2"], expected["padded"])
    assert torch.equal(capture.activations["conv2"], expected["conv2"])
    if method == "fx":  # the receptive-field trace sees through the pad to the activation
        assert program.by_name["conv2"].source == "act"
        assert program.by_name["conv2"].padding == (0, 1, 1, 2)  # top, left, bottom, right


def test_stop_early_on_an_input_ends_before_its_layer_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    model = seeded(PaddedNet(functional_pad=True), "fx")
    program = LayerProgram.build(model)
    tripwire(model.conv2, monkeypatch)
    x = torch.ones(1, 1, 3, 3)
    c = ActivationCapture(program, [], inputs_of=["conv2"], stop_early=True)
    with torch.no_grad():
        assert c.run(x) is None
        expected = padded_reference(model, x)["padded"]
    assert list(c.inputs) == ["conv2"] and torch.equal(c.inputs["conv2"], expected)


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.gate = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 2)
        self.register_buffer("offset", torch.ones(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x * 2 + self.offset  # a constant scale and a buffer: no layers
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1)
        y = F.max_pool2d(y * torch.sigmoid(self.gate(y)), 2)  # a gate: a mul of two maps
        y = torch.flatten(y.mean((2, 3)), 1)
        return self.fc(y + y.mean(1, keepdim=True))  # a mean over channels is no pooling


def test_functional_ops_are_layers() -> None:
    """Top-level ops are named by the op (``block.add`` in TinyCNN shows the enclosing module)."""
    model = seeded(FunctionalNet(), "fx")
    program = LayerProgram.build(model)
    assert {layer.name: (layer.kind, layer.module) for layer in program.layers} == {
        "a": ("conv", "a"),
        "relu": ("activation", None),
        "b": ("conv", "b"),
        "relu_1": ("activation", None),
        "cat": ("cat", None),
        "gate": ("conv", "gate"),
        "sigmoid": ("activation", None),
        "mul": ("mul", None),
        "max_pool2d": ("pool", None),
        "mean": ("pool", None),
        "flatten": ("flatten", None),
        "add": ("add", None),
        "fc": ("linear", "fc"),
    }
    x = torch.randn((1, 3, 4, 4), generator=torch.Generator().manual_seed(2))
    capture = ActivationCapture(program)
    with torch.no_grad():
        capture.run(x)
        x = x * 2 + 1
        cat = torch.cat([model.a(x).relu(), model.b(x).relu()], 1)
    got = capture.activations
    assert capture.order == [layer.name for layer in program.layers] == list(got)
    assert torch.equal(got["cat"], cat)
    assert torch.equal(got["mul"], cat * torch.sigmoid(model.gate(cat)))
    assert torch.equal(got["max_pool2d"], F.max_pool2d(got["mul"], 2))
    assert torch.equal(got["mean"], got["max_pool2d"].mean((2, 3)))
    assert torch.equal(got["add"], got["flatten"] + got["flatten"].mean(1, keepdim=True))


class InPlaceNet(nn.Module):
    """conv → bn → one way real code overwrites a tensor in place → pool."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.conv, self.other, self.bn = nn.Conv2d(2, 4, 1), nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4)
        self.relu, self.flatten = nn.ReLU(inplace=True), nn.Flatten()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(self.conv(x))
        if self.data_dependent:
            refuse_nan(y)
        if self.variant == "ReLU(inplace=True)":
            y = self.relu(y)
        elif self.variant == "F.relu(inplace=True)":
            y = F.relu(y, inplace=True)
        elif self.variant == "add_":
            y = y.add_(self.other(x))
        elif self.variant == "view of a mutated tensor":
            flat = self.flatten(y)
            y.relu_()
            return flat
        elif self.variant == "mutated view":
            y.view(-1).relu_()  # the result is dropped: `y` itself is what changed
        elif self.variant == "mutated swapaxes":
            y.swapaxes(2, 3).relu_()
        else:
            y = F.relu(y)
        return self.pool(y)


@pytest.mark.parametrize(
    ("variant", "overwritten"),
    [
        ("ReLU(inplace=True)", {"bn"}),
        ("F.relu(inplace=True)", {"bn"}),
        ("add_", {"bn"}),
        ("view of a mutated tensor", {"bn", "flatten"}),
        ("mutated view", {"bn", "view"}),
        ("mutated swapaxes", {"bn", "swapaxes"}),
        ("out of place", set()),
    ],
)
def test_exactly_the_values_a_later_in_place_op_overwrites_are_marked(
    variant: str, overwritten: set[str]
) -> None:
    model = seeded(InPlaceNet(variant), "fx")
    program = LayerProgram.build(model)
    x = torch.randn((2, 2, 3, 3), generator=torch.Generator().manual_seed(4))
    at_tap: dict[int, tuple[Tensor, Tensor]] = {}  # a copy made at the tap, and the tensor itself

    def sink(point: int, value: Tensor) -> None:
        at_tap[point] = (value.clone(), value)

    with torch.no_grad():
        program.run(x, sink)
        batchnorm = model.bn(model.conv(x))
    changed = {program.points[i].node for i, (copy, kept) in at_tap.items() if not copy.equal(kept)}
    assert changed == overwritten  # what really happens in this forward: no more, no less
    assert {point.node for point in program.points if point.overwritten} == overwritten
    capture = ActivationCapture(program)
    with torch.no_grad():
        capture.run(x)
    assert capture.activations["bn"].min() < 0 and torch.equal(capture.activations["bn"], batchnorm)
    for layer in program.layers:
        assert torch.equal(capture.activations[layer.name], at_tap[layer.point][0]), layer.name


@pytest.mark.parametrize(
    "method",
    ["hooks", "fx"],
)
def test_a_module_input_changed_by_a_dropped_in_place_result_is_what_it_received(
    method: str,
) -> None:
    model = seeded(InPlaceNet("mutated view"), method)
    program = LayerProgram.build(model)
    x = torch.randn((2, 2, 3, 3), generator=torch.Generator().manual_seed(4))
    capture = ActivationCapture(program, ["bn"], inputs_of=["pool"])
    with torch.no_grad():
        capture.run(x)
        batchnorm = model.bn(model.conv(x))
    assert program.method == "fx" or all(point.overwritten for point in program.points)
    assert torch.equal(capture.activations["bn"], batchnorm)  # copied before the ReLU ran
    assert torch.equal(capture.inputs["pool"], batchnorm.relu())  # the pool saw the ReLU's result
