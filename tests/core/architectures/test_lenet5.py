"""LeNet5: layer names, per-layer shapes, parameter count, forward wiring, weight loading."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.nn import functional

from app.core.architectures.lenet5 import LeNet5, Normalization, load_lenet5

LAYER_SHAPES = {
    "conv1": (6, 28, 28),
    "relu1": (6, 28, 28),
    "pool1": (6, 14, 14),
    "conv2": (16, 10, 10),
    "relu2": (16, 10, 10),
    "pool2": (16, 5, 5),
    "flatten": (400,),
    "fc1": (120,),
    "relu3": (120,),
    "fc2": (84,),
    "relu4": (84,),
    "fc3": (10,),
}


def seeded_model() -> LeNet5:
    torch.manual_seed(0)
    return LeNet5().eval()


def capture_outputs(model: nn.Module, images: Tensor) -> dict[str, Tensor]:
    """Run ``model`` once and keep every direct child's output, as the visualizer's hooks do."""
    outputs: dict[str, Tensor] = {}
    handles = [
        child.register_forward_hook(
            lambda _module, _inputs, output, name=name: outputs.__setitem__(name, output)
        )
        for name, child in model.named_children()
    ]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def test_children_are_the_named_stages_in_order() -> None:
    assert [name for name, _ in LeNet5().named_children()] == list(LAYER_SHAPES)


def test_every_stage_has_the_lenet_output_shape() -> None:
    outputs = capture_outputs(seeded_model(), torch.rand(3, 1, 28, 28))
    assert {name: tuple(output.shape) for name, output in outputs.items()} == {
        name: (3, *shape) for name, shape in LAYER_SHAPES.items()
    }


def test_parameter_count_matches_hand_computation() -> None:
    per_layer = {
        "conv1": 6 * 1 * 5 * 5 + 6,
        "conv2": 16 * 6 * 5 * 5 + 16,
        "fc1": 400 * 120 + 120,
        "fc2": 120 * 84 + 84,
        "fc3": 84 * 10 + 10,
    }
    model = LeNet5()
    counted = {
        name: sum(parameter.numel() for parameter in child.parameters())
        for name, child in model.named_children()
    }
    assert {name: count for name, count in counted.items() if count} == per_layer
    assert sum(parameter.numel() for parameter in model.parameters()) == 61_706


def test_forward_matches_functional_reference() -> None:
    model = seeded_model()
    images = torch.randn(4, 1, 28, 28)
    features = functional.max_pool2d(
        functional.relu(functional.conv2d(images, model.conv1.weight, model.conv1.bias, padding=2)),
        2,
    )
    features = functional.max_pool2d(
        functional.relu(functional.conv2d(features, model.conv2.weight, model.conv2.bias)), 2
    )
    hidden = functional.relu(
        functional.linear(features.flatten(1), model.fc1.weight, model.fc1.bias)
    )
    hidden = functional.relu(functional.linear(hidden, model.fc2.weight, model.fc2.bias))
    expected = functional.linear(hidden, model.fc3.weight, model.fc3.bias)
    with torch.no_grad():
        torch.testing.assert_close(model(images), expected, rtol=0, atol=1e-6)


def test_captured_activations_are_not_overwritten_by_later_layers() -> None:
    model = seeded_model()
    images = torch.randn(2, 1, 28, 28)
    outputs = capture_outputs(model, images)
    with torch.no_grad():
        fresh_conv1 = model.conv1(images)
    assert (outputs["conv1"] < 0).any()
    assert torch.equal(outputs["conv1"], fresh_conv1)
    assert torch.equal(outputs["relu1"], fresh_conv1.clamp(min=0))


def test_load_restores_weights_and_normalization(tmp_path: Path) -> None:
    model = seeded_model()
    path = tmp_path / "lenet.safetensors"
    save_file(model.state_dict(), path, metadata={"mean": "0.1315", "std": "0.3091"})
    loaded, normalization = load_lenet5(path)
    assert normalization == Normalization(mean=0.1315, std=0.3091)
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


@pytest.mark.parametrize("metadata", [{}, {"mean": "0.1"}, {"mean": "0.1", "std": "wide"}])
def test_load_rejects_missing_normalization(tmp_path: Path, metadata: dict[str, str]) -> None:
    path = tmp_path / "lenet.safetensors"
    save_file(LeNet5().state_dict(), path, metadata=metadata)
    with pytest.raises(ValueError, match="metadata needs numeric 'mean' and 'std'"):
        load_lenet5(path)


def test_load_rejects_tensors_of_another_network(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file(nn.Linear(3, 2).state_dict(), path, metadata={"mean": "0", "std": "1"})
    with pytest.raises(ValueError, match="do not match LeNet5"):
        load_lenet5(path)
