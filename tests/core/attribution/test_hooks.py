"""LayerTap: the one hook the gradient methods own, and what it must never do."""

import threading

import pytest
import torch
from torch import nn

from app.core.attribution.hooks import LayerNotRunError, LayerTap, class_index_of, forward_to_layer
from tests.helpers import tiny_cnn, tiny_inputs


def hook_count(model: nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def test_stop_mode_skips_the_rest_of_the_network() -> None:
    model = tiny_cnn()
    calls: list[str] = []
    handle = model.classifier.register_forward_hook(lambda *_: calls.append("classifier"))
    try:
        output = forward_to_layer(model, "block", tiny_inputs(1))
    finally:
        handle.remove()
    assert calls == []
    torch.testing.assert_close(output, model.block(model.features(tiny_inputs(1))))
    assert hook_count(model) == 0


def test_leaf_mode_stops_the_backward_at_the_layer() -> None:
    model = tiny_cnn()
    image = tiny_inputs(1).requires_grad_(True)
    with torch.enable_grad(), LayerTap(model, "features.3", "leaf") as tap:
        logits = tap.run(image)
        gradient, to_image = torch.autograd.grad(
            logits[0, 0], [tap.tapped(), image], allow_unused=True
        )
    assert gradient.shape == (1, 4, 4, 4)
    assert to_image is None  # the graph starts at the tapped layer: nothing below is recorded
    assert hook_count(model) == 0


def test_hook_is_removed_when_the_forward_raises() -> None:
    model = tiny_cnn()
    with pytest.raises(RuntimeError), LayerTap(model, "block", "leaf") as tap:
        tap.run(torch.zeros(1, 5, 8, 8))  # wrong channel count
    assert hook_count(model) == 0


def test_forwards_of_other_threads_are_not_touched() -> None:
    """The served model is shared: another request's forward must run as if no tap existed."""
    model = tiny_cnn()
    results: dict[str, torch.Tensor] = {}
    with LayerTap(model, "block", "stop"):
        worker = threading.Thread(target=lambda: results.setdefault("out", model(tiny_inputs(1))))
        worker.start()
        worker.join()
    torch.testing.assert_close(results["out"], model(tiny_inputs(1)))


def test_unknown_layers_and_classes() -> None:
    with pytest.raises(KeyError):
        LayerTap(tiny_cnn(), "missing", "stop")
    with pytest.raises(KeyError):
        LayerTap(tiny_cnn(), "", "stop")
    logits = torch.tensor([[0.1, 3.0, -1.0]])
    assert class_index_of(logits, None) == 1
    assert class_index_of(logits, 2) == 2
    with pytest.raises(ValueError):
        class_index_of(logits, 3)


class Routed(nn.Module):
    """fx cannot trace the branch, so the program falls back to module hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.bright = nn.Conv2d(4, 2, 1)
        self.dark = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(x))
        return (self.bright(x) if x.mean() > 0.5 else self.dark(x)).mean((2, 3))


def test_hooked_programs_tap_an_in_place_modules_real_input() -> None:
    model = Routed().eval().requires_grad_(False)
    image = tiny_inputs(1)
    before_relu = forward_to_layer(model, "relu", image, use_input=True)
    with torch.no_grad():
        torch.testing.assert_close(before_relu, model.conv(image), rtol=0, atol=0)
    assert float(before_relu.min()) < 0  # not the ReLU's output, which overwrote it
    assert sum(len(module._forward_pre_hooks) for module in model.modules()) == 0


def test_a_layer_the_forward_skips_is_a_clear_value_error() -> None:
    model = Routed().eval()
    with pytest.raises(LayerNotRunError, match="'bright' did not run"):
        forward_to_layer(model, "bright", torch.zeros(1, 3, 8, 8))
    assert issubclass(LayerNotRunError, ValueError)
