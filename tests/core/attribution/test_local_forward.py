"""Local recomputation: which units a change reaches, and exactness against full forwards."""

import pytest
import torch
from torch import nn

from app.core.attribution.local_forward import (
    Change,
    affected,
    chain_of,
    clean_maps,
    crop_for,
    propagate,
)
from app.core.attribution.occlusion import occlusion
from app.core.receptive_field import ReceptiveField
from app.core.registry import ModelRegistry
from tests.helpers import tiny_cnn

STRIDE2_K3_PAD1 = ReceptiveField(size=(3, 3), jump=(2, 2), start=(0.0, 0.0))
"""Output unit o of a 3×3, stride-2, padding-1 conv sees input units 2o-1 .. 2o+1."""


def test_affected_units_and_crops_by_hand() -> None:
    # Input units 5..6 are seen by outputs whose field 2o-1..2o+1 meets them: o = 2, 3.
    assert affected(STRIDE2_K3_PAD1, 0, (5, 6), length=8) == (2, 3)
    # Outputs 2..3 need inputs 3..7; the crop starts on a multiple of the stride: 2.
    assert crop_for(STRIDE2_K3_PAD1, 0, (2, 3), length=16) == (2, 7)
    # At the border the real padding is used: outputs 0..1 need inputs -1..3 → 0..3.
    assert crop_for(STRIDE2_K3_PAD1, 0, (0, 1), length=16) == (0, 3)
    assert affected(STRIDE2_K3_PAD1, 0, (15, 15), length=8) == (7, 7)


def test_propagate_equals_the_changed_units_of_a_full_forward() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1).double().eval()
    stage = chain_of(nn.Sequential(conv), (2, 16, 16))[0]
    clean = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    changes = [
        Change(((5, 6), (0, 2)), torch.randn(1, 2, 2, 3, dtype=torch.float64)),
        Change(((9, 10), (12, 14)), torch.randn(1, 2, 2, 3, dtype=torch.float64)),
    ]
    with torch.no_grad():
        results = propagate(stage, clean, (8, 8), changes)
        for change, result in zip(changes, results, strict=True):
            changed = clean.clone()
            (r0, r1), (c0, c1) = change.region
            changed[:, :, r0 : r1 + 1, c0 : c1 + 1] = change.values
            full = conv(changed)
            (o0, o1), (p0, p1) = result.region
            torch.testing.assert_close(result.values, full[:, :, o0 : o1 + 1, p0 : p1 + 1])
            outside = torch.ones(8, 8, dtype=torch.bool)
            outside[o0 : o1 + 1, p0 : p1 + 1] = False
            torch.testing.assert_close(full[0][:, outside], conv(clean)[0][:, outside])


def even_stack() -> nn.Module:
    """Asymmetric padding, even kernels and strides: the awkward cases of real networks."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)),
        nn.Conv2d(1, 3, 3, stride=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 4, padding=2),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()


@pytest.mark.parametrize(("window", "stride"), [(3, 2), (5, 3), (20, 7)])
def test_local_occlusion_equals_full_forwards(window: int, stride: int) -> None:
    model = even_stack().double()
    image = torch.randn(1, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fill = torch.tensor([0.3], dtype=torch.float64)
    local = occlusion(model, image, (window, window), (stride, stride), fill, batch_size=5)
    full = occlusion(model, image, (window, window), (stride, stride), fill, local=False)
    torch.testing.assert_close(local.drops, full.drops, rtol=0, atol=1e-12)


def test_lenet_local_occlusion_matches(registry: ModelRegistry) -> None:
    model = registry.get("lenet5-mnist").module
    image = torch.randn(1, 28, 28, generator=torch.Generator().manual_seed(2))
    local = occlusion(model, image, (4, 4), (2, 2), torch.zeros(1))
    full = occlusion(model, image, (4, 4), (2, 2), torch.zeros(1), batch_size=1, local=False)
    torch.testing.assert_close(local.drops, full.drops, rtol=1e-4, atol=1e-5)


class InPlaceNet(nn.Module):
    """Real code's habits: an in-place LeakyReLU module (not idempotent, unlike ReLU), ``x.mul_``
    between two children, an adaptive pool whose windows depend on the map's size, and
    ``torch.flatten`` before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.conv2 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv1(x))
        x.mul_(2.0)
        x = self.pool(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


def seeded(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for parameter in model.parameters():
        nn.init.normal_(parameter, std=0.5)
    return model.double().eval()


def test_in_place_ops_stay_inside_stages_and_never_touch_the_clean_maps() -> None:
    model = seeded(InPlaceNet(), 4)
    stages = chain_of(model, (1, 8, 8))
    assert [(stage.name, stage.field is not None) for stage in stages] == [
        ("conv1", True),
        ("act", True),
        ("mul_+conv2", True),  # x.mul_ overwrites act's output, which conv2 then reads
        ("pool", False),  # 4×4 → 2×2 windows would change size on a crop: the probe refuses it
        ("flatten", False),
        ("fc", False),
    ]
    image = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        maps = clean_maps(stages, image)
        torch.testing.assert_close(maps[1], model.conv1(image), rtol=0, atol=0)
        torch.testing.assert_close(maps[-1], model(image.clone()), rtol=0, atol=0)
    fill = torch.tensor([0.7], dtype=torch.float64)
    local = occlusion(model, image[0], (3, 3), (1, 1), fill, batch_size=7)
    full = occlusion(model, image[0], (3, 3), (1, 1), fill, local=False)
    torch.testing.assert_close(local.drops, full.drops, rtol=0, atol=1e-12)


def test_changes_no_unit_sees_are_dropped() -> None:
    """A strided 1×1 conv skips every other row; an unpadded stride-2 3×3 conv on an even map
    never reaches its last row. Windows there change nothing, and crops must not shift."""
    model = seeded(
        nn.Sequential(
            nn.Conv2d(1, 2, 1, stride=2),
            nn.ReLU(),
            nn.Conv2d(2, 2, 3, stride=2),
            nn.Flatten(),
            nn.Linear(18, 2),
        ),
        6,
    )
    local_stages = [stage.field is not None for stage in chain_of(model, (1, 16, 16))]
    assert local_stages == [True, True, True, False, False]
    image = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    fill = torch.zeros(1, dtype=torch.float64)
    local = occlusion(model, image, (2, 2), (1, 1), fill, batch_size=9)
    full = occlusion(model, image, (2, 2), (1, 1), fill, local=False)
    torch.testing.assert_close(local.drops, full.drops, rtol=0, atol=1e-12)
    single = occlusion(model, image, (1, 1), (1, 1), fill)
    assert float(single.drops[1::2].abs().max()) < 1e-12  # odd rows: unseen by the 1×1 conv
    assert float(single.drops[:, 13:].abs().max()) < 1e-12  # columns 13-15: past the last unit
    assert float(single.drops[::2, :13].abs().min()) > 0


class Branching(nn.Module):
    """conv → relu, but the relu also sees the input: conv and the add are one stage."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) + x)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.mean() > 0 else -self.conv(x)


def test_chains_are_read_from_the_graph() -> None:
    branching = chain_of(Branching(), (1, 6, 6))
    assert [(stage.name, stage.field.size) for stage in branching] == [
        ("conv+add", (3, 3)),
        ("relu", (1, 1)),
    ]
    assert chain_of(Untraceable(), (1, 6, 6)) is None
    head_only = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    assert chain_of(head_only, (1, 6, 6)) is None  # no local first stage: nothing to crop
    stages = chain_of(tiny_cnn(), (3, 8, 8))
    assert [stage.name for stage in stages] == [
        "features.0",
        "features.1",
        "features.2",
        "features.3",
        "block",
        "flatten",
        "classifier",
    ]
    assert [stage.field is not None for stage in stages] == [True] * 5 + [False] * 2
