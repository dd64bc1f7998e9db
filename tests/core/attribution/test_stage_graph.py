"""The forward cut into stages at the graph's cuts, each stage run as the forward runs it."""

import torch
from torch import nn

from app.core.attribution.stage_graph import graph_stages
from tests.helpers import tiny_cnn, tiny_inputs


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, y.mean((2, 3))


class OptionalArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.conv(x) * scale


class SharedPool(nn.Module):
    """One pool module called twice around a functional relu, as the PyTorch tutorial does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.pool(self.conv(x)))).mean((2, 3))


def run(stages, batch: torch.Tensor) -> torch.Tensor:
    for stage in stages:
        batch = stage.module(batch)
    return batch


def test_module_calls_are_the_modules_and_blocks_share_the_parameters() -> None:
    model = tiny_cnn()
    stages = graph_stages(model)
    assert stages[0].module is model.features[0]
    block = stages[4]
    assert block.name == "block" and isinstance(block.module, torch.fx.GraphModule)
    assert block.module.get_submodule("block.conv") is model.block.conv  # no weight copies
    with torch.no_grad():
        assert torch.equal(run(stages, tiny_inputs(2)), model(tiny_inputs(2)))


def test_calls_of_one_module_and_functional_ops_are_separate_stages() -> None:
    model = SharedPool().eval()
    stages = graph_stages(model)
    assert [stage.name for stage in stages] == ["conv", "pool", "relu", "pool@1", "mean"]
    with torch.no_grad():
        assert torch.equal(run(stages, tiny_inputs(2)), model(tiny_inputs(2)))


def test_forwards_that_are_not_one_image_to_one_tensor() -> None:
    assert graph_stages(TwoOutputs()) is None
    assert graph_stages(OptionalArgument()) is None
