"""ActivationCapture on a seeded toy CNN: exact outputs, execution order, hooks always removed."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.core.capture import ActivationCapture, layer_kind, visible_layers
from tests.helpers import TinyCNN, tiny_cnn, tiny_inputs

EXECUTION_ORDER = [
    "features.0",
    "features.1",
    "features.2",
    "features.3",
    "block.conv",
    "block.relu",
    "block",
    "classifier",
]


def manual_forward(model: TinyCNN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every visible layer's output computed with functional ops, without the modules' forwards."""
    conv, batchnorm = model.features[0], model.features[1]
    out: dict[str, torch.Tensor] = {}
    out["features.0"] = F.conv2d(x, conv.weight, conv.bias, padding=1)
    out["features.1"] = F.batch_norm(
        out["features.0"],
        batchnorm.running_mean,
        batchnorm.running_var,
        batchnorm.weight,
        batchnorm.bias,
        training=False,
        eps=batchnorm.eps,
    )
    out["features.2"] = out["features.1"].clamp(min=0)
    out["features.3"] = F.max_pool2d(out["features.2"], 2)
    block = model.block
    out["block.conv"] = F.conv2d(out["features.3"], block.conv.weight, block.conv.bias, padding=1)
    out["block.relu"] = out["block.conv"].clamp(min=0)
    out["block"] = out["features.3"] + out["block.relu"]
    flat = out["block"].reshape(x.shape[0], -1)
    out["classifier"] = flat @ model.classifier.weight.T + model.classifier.bias
    return out


def assert_no_hooks(model: nn.Module) -> None:
    assert all(not module._forward_hooks for module in model.modules())


def test_captures_every_visible_layer_exactly_in_execution_order() -> None:
    model = tiny_cnn()
    x = tiny_inputs(2)
    with torch.no_grad(), ActivationCapture(model) as capture:
        logits = capture.run(x)
    with torch.no_grad():
        expected = manual_forward(model, x)
    assert capture.order == EXECUTION_ORDER
    assert list(capture.activations) == EXECUTION_ORDER
    for name in EXECUTION_ORDER:
        torch.testing.assert_close(capture.activations[name], expected[name], rtol=0, atol=0)
    torch.testing.assert_close(logits, capture.activations["classifier"], rtol=0, atol=0)
    assert_no_hooks(model)


def test_first_convolution_matches_a_numpy_correlation() -> None:
    model = tiny_cnn()
    x = tiny_inputs(1)
    with torch.no_grad(), ActivationCapture(model, ["features.0"]) as capture:
        capture.run(x)
    weight = model.features[0].weight.detach().double().numpy()
    bias = model.features[0].bias.detach().double().numpy()
    padded = np.pad(x[0].double().numpy(), ((0, 0), (1, 1), (1, 1)))
    # windows[c, y, x] is the 3×3 patch of channel c under output pixel (y, x).
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    expected = np.einsum("cyxij,ocij->oyx", windows, weight) + bias[:, None, None]
    np.testing.assert_allclose(capture.activations["features.0"][0].numpy(), expected, atol=1e-5)


def test_visible_layers_and_their_kinds() -> None:
    model = tiny_cnn()
    layers = visible_layers(model)
    assert sorted(layers) == sorted(EXECUTION_ORDER)
    assert layers["block"] is model.block
    kinds = {name: layer_kind(module) for name, module in layers.items()}
    assert kinds == {
        "features.0": "conv",
        "features.1": "batchnorm",
        "features.2": "activation",
        "features.3": "pool",
        "block.conv": "conv",
        "block.relu": "activation",
        "block": "block",
        "classifier": "linear",
    }
    assert layer_kind(model.features) is None
    assert layer_kind(model.flatten) is None


@pytest.mark.parametrize(
    ("module", "kind"),
    [
        (nn.Conv2d(4, 4, 3, groups=4), "depthwise_conv"),
        (nn.Conv2d(4, 8, 3, groups=4), "depthwise_conv"),  # channel multiplier 2
        (nn.Conv2d(4, 8, 3, groups=2), "conv"),  # grouped, not depthwise
        (nn.Conv2d(1, 1, 3), "conv"),
        (nn.BatchNorm1d(3), "batchnorm"),
        (nn.ReLU6(), "activation"),
        (nn.SiLU(), "activation"),
        (nn.Hardswish(), "activation"),
        (nn.AdaptiveAvgPool2d(1), "pool"),
        (nn.AvgPool2d(2), "pool"),
        (nn.Linear(2, 3), "linear"),
        (nn.Dropout(0.2), None),
        (nn.Identity(), None),
        (nn.ZeroPad2d(1), None),
        (nn.ModuleList([nn.ReLU()]), None),
        (nn.Softmax(dim=1), None),
    ],
)
def test_layer_kind(module: nn.Module, kind: str | None) -> None:
    assert layer_kind(module) == kind


def test_hooks_are_removed_after_a_normal_run() -> None:
    model = tiny_cnn()
    capture = ActivationCapture(model)
    assert_no_hooks(model)
    with capture:
        assert len(model.features[0]._forward_hooks) == 1
        assert len(model.block._forward_hooks) == 1
        capture.run(tiny_inputs(1))
    assert_no_hooks(model)


def test_hooks_are_removed_when_the_forward_raises() -> None:
    model = tiny_cnn()
    wrong_channels = torch.zeros(1, 5, 8, 8)
    with pytest.raises(RuntimeError), ActivationCapture(model) as capture:
        capture.run(wrong_channels)
    assert_no_hooks(model)
    assert capture.activations == {}


def test_hooks_are_removed_when_the_with_body_raises() -> None:
    model = tiny_cnn()
    with pytest.raises(ZeroDivisionError), ActivationCapture(model) as capture:
        capture.run(tiny_inputs(1))
        _ = 1 / 0
    assert_no_hooks(model)
    assert capture.order == EXECUTION_ORDER


def test_stop_early_records_only_the_wanted_layers_and_skips_the_rest() -> None:
    model = tiny_cnn()
    calls: list[str] = []
    spy = model.classifier.register_forward_hook(lambda *_: calls.append("classifier"))
    x = tiny_inputs(1)
    wanted = ["features.2", "features.0"]
    with torch.no_grad(), ActivationCapture(model, wanted, stop_early=True) as capture:
        result = capture.run(x)
    spy.remove()
    assert result is None
    assert capture.order == ["features.0", "features.2"]
    assert calls == []
    with torch.no_grad():
        expected = manual_forward(model, x)
    for name in wanted:
        torch.testing.assert_close(capture.activations[name], expected[name], rtol=0, atol=0)
    assert_no_hooks(model)


def test_without_stop_early_a_subset_still_returns_the_output() -> None:
    model = tiny_cnn()
    x = tiny_inputs(1)
    with torch.no_grad(), ActivationCapture(model, ["block"]) as capture:
        logits = capture.run(x)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
    assert list(capture.activations) == ["block"]


def test_an_empty_layer_list_runs_the_plain_forward() -> None:
    model = tiny_cnn()
    x = tiny_inputs(1)
    with torch.no_grad(), ActivationCapture(model, [], stop_early=True) as capture:
        logits = capture.run(x)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
    assert capture.activations == {}


def test_unknown_layer_is_a_key_error_naming_it() -> None:
    model = tiny_cnn()
    with pytest.raises(KeyError, match=r"features\.9"):
        ActivationCapture(model, ["features.0", "features.9"])
    assert_no_hooks(model)


def test_run_outside_the_with_block_is_refused() -> None:
    model = tiny_cnn()
    capture = ActivationCapture(model)
    with pytest.raises(RuntimeError, match="inside the `with` block"):
        capture.run(tiny_inputs(1))
    with capture:
        capture.run(tiny_inputs(1))
    with pytest.raises(RuntimeError, match="inside the `with` block"):
        capture.run(tiny_inputs(1))


def test_outputs_are_detached_from_the_graph() -> None:
    model = tiny_cnn()
    x = tiny_inputs(1).requires_grad_()
    with ActivationCapture(model) as capture:
        logits = capture.run(x)
    assert logits is not None and logits.grad_fn is not None
    for tensor in capture.activations.values():
        assert not tensor.requires_grad
        assert tensor.grad_fn is None


def test_a_module_called_twice_keeps_its_first_output() -> None:
    shared = nn.Tanh()
    model = nn.Sequential(shared, nn.Flatten(), shared)
    x = torch.tensor([[[[0.5, -2.0]]]])
    with ActivationCapture(model) as capture:
        capture.run(x)
    assert capture.order == ["0"]
    torch.testing.assert_close(capture.activations["0"], torch.tanh(x), rtol=0, atol=0)
