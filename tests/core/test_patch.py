"""feature_map_patch: exact windows, None outside the map, and refused requests."""

import pytest
import torch

from app.core.patch import MAX_PATCH_SIDE, PatchError, feature_map_patch

MAPS = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4) / 8


def test_window_inside_the_map_is_exact() -> None:
    assert feature_map_patch(MAPS, 1, 2, 2, 2) == [
        [[6 / 8, 7 / 8], [10 / 8, 11 / 8]],
        [[18 / 8, 19 / 8], [22 / 8, 23 / 8]],
    ]


def test_cells_outside_the_map_are_none() -> None:
    assert feature_map_patch(MAPS, -1, 3, 3, 2, channels=[1]) == [
        [[None, None], [15 / 8, None], [19 / 8, None]]
    ]


def test_window_wholly_outside_is_all_none() -> None:
    assert feature_map_patch(MAPS, 5, 5, 1, 2, channels=[0]) == [[[None, None]]]


def test_float32_values_survive_unchanged() -> None:
    maps = torch.tensor([[[0.1, 1 / 3]]], dtype=torch.float32)
    assert feature_map_patch(maps, 0, 0, 1, 2) == [[[float(maps[0, 0, 0]), float(maps[0, 0, 1])]]]


@pytest.mark.parametrize(
    ("maps", "window", "channels", "message"),
    [
        (torch.zeros(5), (0, 0, 1, 1), None, "no spatial maps"),
        (MAPS, (0, 0, 0, 1), None, "height and width"),
        (MAPS, (0, 0, 1, MAX_PATCH_SIDE + 1), None, "height and width"),
        (MAPS, (0, 0, 1, 1), [2], "channels must lie in 0..1"),
        (torch.zeros(80, 64, 64), (0, 0, 64, 64), None, "at most"),
    ],
)
def test_refused_windows(
    maps: torch.Tensor, window: tuple[int, int, int, int], channels: list[int] | None, message: str
) -> None:
    with pytest.raises(PatchError, match=message):
        feature_map_patch(maps, *window, channels=channels)
