"""im2col, folded batch norm and separable pairs, checked against the layers' own numbers."""

import pytest
import torch

from app.config import REPO_ROOT
from app.core.layer_math import fold_batchnorm, im2col_unit, separable_pairs
from app.core.layer_program import LayerProgram
from app.core.model_spec import read_spec
from app.core.registry import describe_layers, load_model
from app.core.unit_math import UnitError
from tests.zoo import ZOO


@pytest.fixture(scope="module")
def lite0():
    return load_model(
        read_spec(REPO_ROOT / "models" / "efficientnet-lite0.toml"), torch.device("cpu")
    )


def photo_batch() -> torch.Tensor:
    return torch.randn((1, 3, 224, 224), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    ("layer", "unit", "shape"),
    [
        ("_conv_stem", (5, 111, 111), (112 * 112, 27, 1, 32)),  # the TF-SAME pad's zeros inside
        ("_blocks.1._depthwise_conv", (7, 0, 55), (56 * 56, 9, 96, 1)),  # one product per channel
        ("_blocks.1._project_conv", (3, 10, 20), (56 * 56, 96, 1, 24)),
    ],
)
def test_the_units_row_times_its_filters_column_is_its_value(lite0, layer, unit, shape) -> None:
    result = im2col_unit(lite0.program, photo_batch(), layer, *unit)
    assert (result.rows, result.columns, result.groups, result.filters_in_group) == shape
    assert result.row_index == unit[1] * int(shape[0] ** 0.5) + unit[2]
    assert result.preview[result.row_index - result.preview_start] == result.row
    assert result.dot + (result.bias or 0.0) == pytest.approx(result.value, abs=1e-4)


def test_grouped_dilated_and_reflect_padded_zoo_convs() -> None:
    entry = ZOO["zoo-padding"]
    program = LayerProgram.build(entry.build().eval().requires_grad_(False))
    layers = describe_layers(program, entry.input_shape)
    batch = torch.randn((1, *entry.input_shape), generator=torch.Generator().manual_seed(1))
    for info in layers:
        if info.type != "Conv2d":
            continue
        channels, height, width = info.output_shape
        for unit in ((0, 0, 0), (channels - 1, height - 1, width - 1)):
            result = im2col_unit(program, batch, info.name, *unit)
            assert result.dot + (result.bias or 0.0) == pytest.approx(result.value, abs=1e-4)


def test_folded_batch_norm_gives_the_same_unit(lite0) -> None:
    for layer in ("_conv_stem", "_blocks.3._depthwise_conv", "_conv_head"):
        folded = fold_batchnorm(lite0.program, photo_batch(), layer, 4, 1, 2)
        assert folded.folded_value == pytest.approx(folded.unfolded_value, abs=1e-4)
        assert folded.folded_weights == pytest.approx(
            [w * folded.scale for w in folded.raw_weights], rel=1e-6
        )
    with pytest.raises(UnitError, match="has no filter matrix"):
        fold_batchnorm(lite0.program, photo_batch(), "_fc", 0, 0, 0)
    resnet = ZOO["zoo-resnet-bottleneck"]
    program = LayerProgram.build(resnet.build().eval().requires_grad_(False))
    describe_layers(program, resnet.input_shape)
    batch = torch.randn((1, *resnet.input_shape), generator=torch.Generator().manual_seed(1))
    grouped = fold_batchnorm(program, batch, "layer1.0.conv2", 3, 2, 2)  # groups=4
    assert grouped.folded_value == pytest.approx(grouped.unfolded_value, abs=1e-4)


def test_separable_pairs_count_the_layers_own_parameters(lite0) -> None:
    shapes = {layer.name: layer.output_shape for layer in lite0.layers}
    params = {layer.name: layer.params for layer in lite0.layers}
    pairs = separable_pairs(lite0.program, shapes)
    assert len(pairs) == sum(layer.kind == "depthwise_conv" for layer in lite0.layers) == 16
    for pair in pairs:
        assert pair.params == params[pair.depthwise] + params[pair.pointwise]
        kh, kw = pair.kernel
        assert pair.full_params == pair.in_channels * pair.out_channels * kh * kw
        assert pair.full_params / pair.params > 5  # why MobileNets use them
    first = pairs[0]
    assert (first.depthwise, first.pointwise) == (
        "_blocks.0._depthwise_conv",
        "_blocks.0._project_conv",
    )
    assert first.between == ("_blocks.0._bn1", "_blocks.0._depthwise_act")
    assert (first.params, first.full_params) == (32 * 9 + 32 * 16, 32 * 16 * 9)
    assert first.macs == 32 * 9 * 112 * 112 + 32 * 16 * 112 * 112
