"""Unit arithmetic redone from each layer's real input equals the network's value, on every zoo
model and every layer, at border and centre units (padding of every kind lives at the border)."""

import pytest
import torch

from app.core.layer_program import LayerProgram
from app.core.registry import describe_layers
from app.core.unit_math import UnitError, explain_unit
from tests.zoo import ZOO

TOLERANCE = 1e-4


def units(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Corners, edges and the centre of a (C, H, W) map (first/last channel); ends of a vector."""
    if len(shape) == 1:
        return [(0,), (shape[0] // 2,), (shape[0] - 1,)]
    channels, height, width = shape
    picked = {
        (c, y, x)
        for c in (0, channels - 1)
        for y in (0, height // 2, height - 1)
        for x in (0, width // 2, width - 1)
    }
    return sorted(picked)


@pytest.mark.parametrize("model_id", sorted(ZOO))
def test_every_unit_equals_the_layer_value(model_id: str) -> None:
    entry = ZOO[model_id]
    model = entry.build().eval().requires_grad_(False)
    program = LayerProgram.build(model)
    layers = describe_layers(program, entry.input_shape)
    batch = torch.randn((1, *entry.input_shape), generator=torch.Generator().manual_seed(3))
    checked = 0
    for info in layers:
        for unit in units(info.output_shape):
            try:
                math = explain_unit(program, batch, info.name, unit)
            except UnitError as error:
                if "did not run" in str(error):
                    continue  # a branch this input does not take (the untraceable zoo model)
                raise
            assert abs(math.recomputed - math.value) <= TOLERANCE * max(1.0, abs(math.value)), (
                info.name, unit, math
            )
            checked += 1
    assert checked >= len(layers)


def test_hidden_pads_mark_their_cells_and_operands_name_their_layers() -> None:
    """F.pad's zeros are padding cells in the layer's input coordinates; add/mul operands and the
    layer a unit reads are named."""
    entry = ZOO["zoo-padding"]
    program = LayerProgram.build(entry.build().eval().requires_grad_(False))
    describe_layers(program, entry.input_shape)
    batch = torch.randn((1, *entry.input_shape), generator=torch.Generator().manual_seed(5))
    corner = explain_unit(program, batch, "conv_asymmetric", (0, 0, 0))
    assert corner.source == "act2" and corner.shape == (8, 4, 4)
    assert corner.positions[:2] == [(0, -1, -1), (0, -1, 0)]
    assert sum(corner.padded) == 8 * 7  # the first row and column of the 4×4 window, 8 channels
    assert all(
        value == 0.0 for value, pad in zip(corner.inputs, corner.padded, strict=True) if pad
    )
    resnet = ZOO["zoo-resnet"]
    program = LayerProgram.build(resnet.build().eval().requires_grad_(False))
    describe_layers(program, resnet.input_shape)
    batch = torch.randn((1, *resnet.input_shape), generator=torch.Generator().manual_seed(5))
    add = explain_unit(program, batch, "layer1.0.add", (0, 1, 1))
    assert [operand["layer"] for operand in add.operands] == ["layer1.0.bn2", "maxpool"]
    assert add.recomputed == pytest.approx(sum(o["value"] for o in add.operands), abs=1e-6)
