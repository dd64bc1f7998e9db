"""Capture is exact on models written the way real code is written (the zoo in tests/zoo).

Two independent references, neither using convlens's taps or copy policy:
- module layers: forward hooks on the plain model that copy each call's output at once;
- every layer of a traceable model: an fx ``Interpreter`` over a plain ``symbolic_trace`` that
  copies every node's value as soon as it is computed.
A fresh analysis and a stop-early recompute must agree to the last bit as well.
"""

import threading
from collections import defaultdict

import pytest
import torch
from torch import fx, nn

from app.core.capture import ActivationCapture, capture_layers, capture_resuming
from app.core.layer_program import LayerProgram
from app.core.registry import describe_layers
from tests.zoo import ZOO

ZOO_IDS = sorted(ZOO)


def build(model_id: str) -> tuple[nn.Module, LayerProgram, torch.Tensor]:
    entry = ZOO[model_id]
    model = entry.build().eval().requires_grad_(False)
    program = LayerProgram.build(model)
    describe_layers(program, entry.input_shape)  # marks channels-last points
    batch = torch.randn((2, *entry.input_shape), generator=torch.Generator().manual_seed(7))
    return model, program, batch


def hooked_reference(model: nn.Module, batch: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Every call's output of every module, copied inside the hook."""
    calls: dict[str, list[torch.Tensor]] = defaultdict(list)
    handles = [
        module.register_forward_hook(
            lambda _m, _i, output, name=name: (
                calls[name].append(output.detach().clone())
                if isinstance(output, torch.Tensor)
                else None
            )
        )
        for name, module in model.named_modules()
        if name
    ]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return calls


class _CopyingInterpreter(fx.Interpreter):
    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: fx.Node) -> object:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            self.values[n.name] = result.detach().clone()
        return result


def interpreted_reference(model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    interpreter = _CopyingInterpreter(fx.symbolic_trace(model))
    with torch.no_grad():
        interpreter.run(batch)
    return interpreter.values


@pytest.mark.parametrize("model_id", ZOO_IDS)
def test_every_captured_layer_equals_independent_references(model_id: str) -> None:
    model, program, batch = build(model_id)
    assert program.method == ("fx" if ZOO[model_id].traceable else "hooks")
    capture = ActivationCapture(program)
    with torch.no_grad():
        logits = capture.run(batch)
    with torch.no_grad():
        assert torch.equal(logits, model(batch))  # the program computes what the model does
    hooked = hooked_reference(model, batch)
    ran = {layer.name for layer in program.layers if layer.module is None or layer.module in hooked}
    assert set(capture.activations) == ran  # all of them, but a branch the input did not take
    calls: dict[str, int] = defaultdict(int)
    checked_modules = 0
    for layer in program.layers:
        if layer.name not in ran or layer.module is None:
            continue
        index = calls[layer.module]
        calls[layer.module] += 1
        expected = hooked[layer.module][index]
        got = capture.activations[layer.name]
        if layer.point in program.channels_last:
            expected = expected.permute(0, 3, 1, 2)
        assert torch.equal(got, expected), layer.name
        checked_modules += 1
    assert checked_modules > 0

    if program.method == "fx":
        interpreted = interpreted_reference(model, batch)
        for layer in program.layers:
            expected = interpreted[program.points[layer.point].node]
            if layer.point in program.channels_last:
                expected = expected.permute(0, 3, 1, 2)
            assert torch.equal(capture.activations[layer.name], expected), layer.name


@pytest.mark.parametrize("model_id", ZOO_IDS)
def test_a_stop_early_recompute_equals_the_full_capture(model_id: str) -> None:
    _model, program, batch = build(model_id)
    capture = ActivationCapture(program)
    with torch.no_grad():
        capture.run(batch)
    for layer in program.layers:
        if layer.name not in capture.activations:
            continue  # a branch this input does not take
        again = capture_layers(program, batch, [layer.name])[layer.name]
        assert torch.equal(again, capture.activations[layer.name]), layer.name


@pytest.mark.parametrize("model_id", ZOO_IDS)
def test_a_recompute_resumed_where_the_last_one_stopped_is_exact(model_id: str) -> None:
    """Layers opened in order of depth, each begun at the previous one's frontier, equal a capture
    from the input to the bit; so does a second start at the same frontier (in-place ops of the
    first, as in ResNet and DenseNet, never reach the stored values), and an earlier layer (which
    starts at the input again). The hooked model always starts at the input."""
    _, program, batch = build(model_id)
    names = [layer.name for layer in program.layers]
    chosen = [names[index] for index in range(0, len(names), max(1, len(names) // 7))]
    frontier = None
    for name in [*chosen, chosen[1]]:
        again = frontier
        resumed, frontier = capture_resuming(program, batch, [name], [frontier] if frontier else [])
        fresh = capture_layers(program, batch, [name])
        if name not in fresh:
            assert name not in resumed  # a branch this input does not take
            continue
        assert torch.equal(resumed[name], fresh[name]), name
        if again is not None:
            twice, _ = capture_resuming(program, batch, [name], [again])
            assert torch.equal(twice[name], fresh[name]), name
        assert (frontier is None) == (program.method == "hooks")


def test_in_place_ops_are_seen_and_only_their_victims_copied() -> None:
    """ResNet: bn1 and the residual add feed ReLU(inplace=True): only they are copied.

    (fx records ``out += identity`` as an out-of-place add, so bn2 is never overwritten.)
    """
    _model, program, batch = build("zoo-resnet")
    layers = program.by_name
    overwritten = {
        name for name, layer in layers.items() if program.points[layer.point].overwritten
    }
    assert {"bn1", "layer1.0.bn1", "layer1.0.add"} <= overwritten
    assert "layer1.0.bn2" not in overwritten
    assert not any(layers[name].kind == "conv" for name in overwritten)
    assert layers["layer1.0.relu_1"].module == "layer1.0.relu"  # the module's second call
    capture = ActivationCapture(program, ["bn1"])
    with torch.no_grad():
        capture.run(batch)
    assert capture.activations["bn1"].min() < 0  # not the ReLU that ran over it


def test_functional_ops_are_layers() -> None:
    _model, program, _batch = build("zoo-tutorial")
    names = [layer.name for layer in program.layers]
    assert names == [
        "conv1",
        "relu",
        "pool",
        "conv2",
        "relu_1",
        "pool_1",
        "flatten",
        "fc1",
        "relu_2",
        "fc2",
        "relu_3",
        "fc3",
    ]
    kinds = {layer.name: layer.kind for layer in program.layers}
    assert kinds["relu"] == "activation" and kinds["flatten"] == "flatten"


def test_channels_last_layers_are_shown_channels_first() -> None:
    _model, program, batch = build("zoo-convnext")
    last = [name for name, layer in program.by_name.items() if layer.point in program.channels_last]
    assert last, "ConvNeXt's LayerNorm/Linear/GELU run on (N, H, W, C)"
    capture = ActivationCapture(program)
    with torch.no_grad():
        capture.run(batch)
    for name in last:
        value = capture.activations[name]
        assert value.shape[2] == value.shape[3], name  # (N, C, H, W) with H == W on a square map


def test_other_threads_forwards_are_not_recorded() -> None:
    model, program, batch = build("zoo-resnet")
    seen: list[str] = []
    barrier = threading.Barrier(2)

    def other() -> None:
        barrier.wait()
        with torch.no_grad():
            for _ in range(5):
                program.run(batch, None)

    thread = threading.Thread(target=other)
    thread.start()
    capture = ActivationCapture(program, ["bn1"])
    with torch.no_grad():
        barrier.wait()
        for _ in range(5):
            capture.run(batch)
            seen.append(capture.order[-1])
    thread.join()
    assert capture.order == ["bn1"]
    assert not any(module._forward_hooks for module in model.modules())
