"""compute_receptive_fields on real graphs, checked against autograd.

With positive weights and biases, ReLU and average pooling (no max, no BN), every path from an
input pixel to a unit carries a positive product, so the gradient of the unit with respect to the
input is non-zero exactly on the pixels it depends on: its receptive field clipped to the image,
plus, for a gated unit, what the gate saw (the whole image in these padded nets).
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.receptive_field import (
    Box,
    ReceptiveField,
    clip_box,
    compute_receptive_fields,
    global_receptive_field,
    receptive_field_box,
)

EFFICIENTNET = Path(__file__).parents[2] / "app/core/architectures/efficientnet_lite.py"


class TwoBranchResidual(nn.Module):
    """relu(3x3 + 5x5 + bottom-padded 5x5 + identity): branches with different kernels and centres.

    The shifted branch moves only along the height, so the union of the branches' windows is
    still a rectangle (shifted on both axes it would be an L whose corners no gradient reaches).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.narrow = nn.Conv2d(channels, channels, 3, padding=1)
        self.wide = nn.Conv2d(channels, channels, 5, padding=2)
        self.shifted = nn.Sequential(nn.ZeroPad2d((2, 2, 0, 4)), nn.Conv2d(channels, channels, 5))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.narrow(x) + self.wide(x) + self.shifted(x) + x)


class InceptionCat(nn.Module):
    """Channel concat of 1x1, 3x3 and a dilated 3x3 branch, DenseNet-style with the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.point = nn.Conv2d(channels, 2, 1)
        self.square = nn.Conv2d(channels, 2, 3, padding=1)
        self.dilated = nn.Conv2d(channels, 2, 3, padding="same", dilation=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.point(x), self.square(x), self.dilated(x)], dim=1)


class Crop(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, 1:, :-1]


class MBConv(nn.Module):
    """Expand 1x1, depthwise kxk (TF-style asymmetric pad when strided), project 1x1, residual."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = 3 * channels
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU())
        before, after = (
            ((kernel - 2) // 2, kernel // 2) if stride == 2 else ((kernel - 1) // 2,) * 2
        )
        self.pad = nn.ZeroPad2d((before, after, before, after))
        self.depthwise = nn.Conv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.act = nn.ReLU()
        self.project = nn.Conv2d(hidden, channels, 1)
        self.residual = stride == 1

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.act(self.depthwise(self.pad(self.expand(x)))))
        return y + x if self.residual else y


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, 2, 1)
        self.restore = nn.Conv2d(2, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.restore(F.relu(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


def residual_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        TwoBranchResidual(4),
        nn.AvgPool2d(2),
        InceptionCat(4),
        TwoBranchResidual(10),
    )


def strided_dilated_net(pool: type[nn.Module] = nn.AvgPool2d) -> nn.Module:
    # Every tap spacing (dilation x jump) stays within the previous size, so boxes have no holes.
    return nn.Sequential(
        nn.Conv2d(3, 4, (5, 3), stride=(2, 1), padding=(2, 0)),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
        nn.ReLU(),
        pool(3, stride=2, padding=1, ceil_mode=True),
        Crop(),
        nn.Conv2d(4, 4, 3, stride=3, padding=1),
        nn.ReLU(),
    )


def depthwise_net() -> nn.Module:
    return nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)),
        nn.Conv2d(3, 4, 3, stride=2),
        nn.ReLU(),
        MBConv(4, 3, stride=1),
        MBConv(4, 5, stride=2),
        MBConv(4, 5, stride=1),
        SqueezeExcite(4),
    )


def positive(model: nn.Module) -> nn.Module:
    model.double().eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.fill_(0.05 if name.endswith("weight") else 0.01)
    return model


def layer_outputs(model: nn.Module, image: Tensor) -> dict[str, Tensor]:
    """Output of every module (first call) for one forward of ``image``."""
    outputs: dict[str, Tensor] = {}

    def keep(name: str, output: Tensor) -> None:
        outputs.setdefault(name, output)

    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
        for name, module in model.named_modules()
    ]
    try:
        model(image)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def box_mask(rf: ReceptiveField, y: int, x: int, height: int, width: int) -> np.ndarray:
    box = clip_box(receptive_field_box(rf, y, x, (height, width)), height, width)
    mask = np.zeros((height, width), dtype=bool)
    mask[box.top : box.bottom + 1, box.left : box.right + 1] = True
    return mask


def assert_boxes_match_gradients(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Check every spatial layer at two corners and the centre; count boxes past the image."""
    _, height, width = input_shape
    fields = compute_receptive_fields(model, input_shape)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((1, *input_shape), generator=generator, dtype=torch.float64) + 0.5
    image.requires_grad_(True)
    past_edge = 0
    modules = dict(model.named_modules())
    seen: set[int] = set()  # a block's output is often its last layer's: check it once
    for name, output in layer_outputs(model, image).items():
        if output.dim() != 4 or id(output) in seen:
            continue
        seen.add(id(output))
        h, w = output.shape[-2:]
        units = {(0, 0), (h - 1, w - 1), (h // 2, w // 2)}  # axes are independent: 2 corners do
        if isinstance(modules[name], nn.ZeroPad2d):  # border units are constants, not pixels
            units = {(h // 2, w // 2)}
        for y, x in units:
            (grad,) = torch.autograd.grad(output[0, :, y, x].sum(), image, retain_graph=True)
            reached = (grad[0].abs().sum(0) != 0).numpy()
            rf = fields[name].rf
            assert rf is not None, fields[name].diagnostic
            expected = box_mask(rf, y, x, height, width) | rf.gated
            np.testing.assert_array_equal(reached, expected, f"{name!r} unit ({y}, {x})")
            box = receptive_field_box(rf, y, x, (height, width))
            past_edge += box != clip_box(box, height, width)
    return past_edge


def test_residual_and_concat_branches_match_gradients() -> None:
    model = positive(residual_net())
    assert assert_boxes_match_gradients(model, (3, 17, 19)) > 10
    fields = compute_receptive_fields(model, (3, 17, 19))
    # The stem sees rows y-1..y+1. Block "2": the 5x5 reads stem rows y-2..y+2 (input y-3..y+3),
    # the shifted 5x5 stem rows y..y+4 (input y-1..y+5) and columns x-2..x+2 (x-3..x+3).
    assert fields["2.wide"].rf == ReceptiveField((7, 7), (1, 1), (0.0, 0.0))
    assert fields["2.shifted"].rf == ReceptiveField((7, 7), (1, 1), (2.0, 0.0))
    assert fields["2"].rf == ReceptiveField((9, 7), (1, 1), (1.0, 0.0))  # rows y-3..y+5


def test_strided_dilated_ceil_mode_and_crop_match_gradients() -> None:
    model = positive(strided_dilated_net())
    assert assert_boxes_match_gradients(model, (3, 23, 20)) > 10
    fields = compute_receptive_fields(model, (3, 23, 20))
    # Height: k5 s2 p2 -> size 5 jump 2 start 0; dilated 3x3 (p2) adds 2*2*2 -> 13; pool k3 s2
    # (p1) adds 2*2 -> 17, jump 4; the crop drops one row -> start 4; k3 s3 (p1) adds 2*4 -> 25.
    # Width: k3 p0 -> size 3 start 1; dilated adds 2*2*1 -> 7; pool adds 2*1 -> 9, jump 2; the
    # crop drops the last column only; k3 s3 adds 2*2 -> 13, jump 6.
    assert fields["6"].rf == ReceptiveField((25, 13), (12, 6), (4.0, 1.0))


def test_max_pooling_has_the_same_field_as_average_pooling() -> None:
    with_max = compute_receptive_fields(strided_dilated_net(nn.MaxPool2d), (3, 23, 20))
    with_avg = compute_receptive_fields(strided_dilated_net(nn.AvgPool2d), (3, 23, 20))
    assert {name: field.rf for name, field in with_max.items()} == {
        name: field.rf for name, field in with_avg.items()
    }


def test_depthwise_mbconv_and_squeeze_excite_match_gradients() -> None:
    model = positive(depthwise_net())
    assert assert_boxes_match_gradients(model, (3, 16, 14)) > 10
    fields = compute_receptive_fields(model, (3, 16, 14))
    # The SE block keeps the box of its input, and its scale pools the whole image.
    assert not fields["5"].rf.gated and not fields["5"].rf.is_global
    assert fields["6"].rf == replace(fields["5"].rf, gated=True)


def test_unpadded_stride_edges_match_gradients() -> None:
    model = positive(
        nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2),
            nn.ReLU(),
            nn.AvgPool2d(3, stride=2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(1),
        )
    )
    assert assert_boxes_match_gradients(model, (3, 14, 13)) > 0
    fields = compute_receptive_fields(model, (3, 14, 13))
    # 14 rows: 6 windows at rows 0, 2, …, 10 reach row 12, never 13. 13 columns: 6 windows reach
    # column 12, the last. The pool's third window (conv units 4, 5, and 6 past the edge) reads
    # rows 8..12; the global pool sees rows and columns 0..12.
    assert receptive_field_box(fields["2"].rf, 2, 2, (14, 13)) == Box(8, 8, 12, 14)
    seen = Box(0, 0, 12, 12)
    assert fields["3"].rf == ReceptiveField((13, 13), (0, 0), (6.0, 6.0), True, seen=seen)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_with_even_kernel_is_asymmetric() -> None:
    model = positive(nn.Sequential(nn.Conv2d(3, 2, 4, padding="same"), nn.ReLU()))
    assert assert_boxes_match_gradients(model, (3, 9, 9)) > 0
    # PyTorch puts 1 of the 3 padded pixels before: unit y reads rows y-1..y+2.
    assert compute_receptive_fields(model, (3, 9, 9))["0"].rf.start == (0.5, 0.5)


class BufferCounter(nn.Module):
    """Reassigns a buffer in forward, the kind of state change the tracer must undo."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        self.calls = self.calls + 1
        return x


def test_model_is_left_exactly_as_it_was() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), BufferCounter()
    )
    model.train()
    model[3].eval()  # a mixed state must survive; BatchNorm stays in train mode (updates stats)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    objects = {name: id(tensor) for name, tensor in model.state_dict(keep_vars=True).items()}
    with torch.no_grad():
        under_no_grad = compute_receptive_fields(model, (3, 8, 8))
    assert compute_receptive_fields(model, (3, 8, 8)) == under_no_grad
    assert under_no_grad["4"].rf == ReceptiveField((3, 3), (1, 1), (1.0, 1.0))
    assert [module.training for module in model] == [True, True, True, False, True]
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    after = model.state_dict(keep_vars=True)
    assert {name: id(tensor) for name, tensor in after.items()} == objects
    for name, tensor in after.items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, before[name]), name


class GridWarp(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        grid = torch.zeros((x.shape[0], 4, 4, 2), dtype=x.dtype, device=x.device)
        return F.grid_sample(x, grid, align_corners=False)


class DataDependent(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x if x.sum() > 0 else -x


def test_unsupported_ops_give_diagnostics_not_exceptions() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), GridWarp(), nn.Conv2d(4, 4, 1), nn.Flatten())
    fields = compute_receptive_fields(model, (3, 8, 8))
    assert fields["0"].rf == ReceptiveField((3, 3), (1, 1), (1.0, 1.0))
    for name in ("1", "2", "3", ""):
        assert fields[name].rf is None and fields[name].diagnostic == "unsupported op: grid_sample"
    stopped = compute_receptive_fields(
        nn.Sequential(nn.Conv2d(3, 4, 3), DataDependent()), (3, 8, 8)
    )
    assert stopped["0"].rf is not None
    assert stopped["1"].diagnostic.startswith("forward pass stopped before this layer")


class ChannelsLastBlock(nn.Module):
    """ConvNeXt-style: depthwise 7x7, then LayerNorm and Linear over channels in (N, H, W, C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mix = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.mix(self.norm(self.depthwise(x).permute(0, 2, 3, 1)))
        return x + y.transpose(1, 3).transpose(2, 3)


class RowMean(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=-1, keepdim=True)


def test_per_unit_ops_on_permuted_axes_and_norms_over_the_image() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 4, stride=4), ChannelsLastBlock(4), nn.GroupNorm(2, 4), RowMean()
    )
    fields = compute_receptive_fields(model, (3, 32, 32))
    # Patchify: 4 rows per unit, jump 4, centre 1.5. Depthwise 7x7 at jump 4 adds 6 * 4 = 24.
    assert fields["0"].rf == ReceptiveField((4, 4), (4, 4), (1.5, 1.5))
    for name in ("1.depthwise", "1.norm", "1.mix", "1"):
        assert fields[name].rf == ReceptiveField((28, 28), (4, 4), (1.5, 1.5)), name
    # GroupNorm shifts and scales each unit by statistics over the whole image: a gate.
    assert fields["2"].rf == ReceptiveField((28, 28), (4, 4), (1.5, 1.5), gated=True)
    local = compute_receptive_fields(nn.Sequential(nn.Conv2d(3, 4, 3), RowMean()), (3, 8, 8))
    assert local["1"].diagnostic == "unsupported op: mean over only one of height/width"


class JumpMismatch(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :8, :8] + F.avg_pool2d(x, 2)  # same shape, jumps 1 and 2


def test_branches_with_different_jumps_are_diagnosed() -> None:
    fields = compute_receptive_fields(nn.Sequential(JumpMismatch()), (1, 16, 16))
    assert "disagree in jump" in fields["0"].diagnostic


@pytest.mark.skipif(not EFFICIENTNET.exists(), reason="EfficientNet-Lite0 definition not present")
def test_efficientnet_lite0() -> None:
    from app.core.architectures.efficientnet_lite import build_efficientnet_lite0

    fields = compute_receptive_fields(build_efficientnet_lite0(), (3, 224, 224))
    assert fields["_conv_stem"].rf == ReceptiveField((3, 3), (2, 2), (1.0, 1.0))
    # Size grows by (k - 1) * jump per depthwise conv, jump doubles at each stride-2 stage:
    # stem 3 | k3 @2: 7 | k3 s2 @2, k3 @4: 19 | k5 s2 @4, k5 @8: 67 | k3 s2 @8, 2x k3 @16: 147
    # | 3x k5 @16: 339 | k5 s2 @16, 3x k5 @32: 787 | k3 @32: 851.
    assert fields["_act_head"].rf.size == (851, 851)
    assert fields["_act_head"].rf.jump == (32, 32)
    for name in ("_avg_pooling", "_fc", ""):
        assert fields[name].rf == global_receptive_field(224, 224)
    assert all(field.diagnostic is None for field in fields.values())
