"""A window of a feature map across channels: the numbers a unit of the next layer multiplies.

A conv unit reads a k×k window of every input channel, partly outside the map where padding
applies. The window is returned as is, with None where it leaves the map, so the caller decides what
lies outside (zero padding for a conv, nothing for a pool).
"""

import math

import torch

MAX_PATCH_SIDE = 64
MAX_PATCH_VALUES = 1 << 18


class PatchError(ValueError):
    """The requested window is not readable; the message says why."""


def feature_map_patch(
    maps: torch.Tensor,
    top: int,
    left: int,
    height: int,
    width: int,
    channels: list[int] | None = None,
) -> list[list[list[float | None]]]:
    """Exact values of rows top..top+height-1, columns left..left+width-1 of the chosen channels.

    Args:
        maps: (C, H, W) feature maps of one image.
        top, left: window origin; may be negative or past the map (those cells are None).
        height, width: window size, 1..MAX_PATCH_SIDE each.
        channels: channel indices to read (default: all).

    Raises:
        PatchError: the maps are not spatial, the window is too large, or a channel is missing.
    """
    if maps.ndim != 3:
        raise PatchError("this layer has no spatial maps: read its units one by one instead")
    count, map_height, map_width = maps.shape
    if not (1 <= height <= MAX_PATCH_SIDE and 1 <= width <= MAX_PATCH_SIDE):
        raise PatchError(f"height and width must lie in 1..{MAX_PATCH_SIDE}")
    chosen = list(range(count)) if channels is None else channels
    if any(not 0 <= c < count for c in chosen):
        raise PatchError(f"channels must lie in 0..{count - 1}")
    if len(chosen) * height * width > MAX_PATCH_VALUES:
        raise PatchError(f"a patch holds at most {MAX_PATCH_VALUES:,} values")
    rows = range(top, top + height)
    columns = range(left, left + width)
    inside_rows = [r for r in rows if 0 <= r < map_height]
    inside_columns = [c for c in columns if 0 <= c < map_width]
    window = torch.full((len(chosen), height, width), float("nan"), dtype=torch.float64)
    if inside_rows and inside_columns:
        r0, r1 = inside_rows[0], inside_rows[-1] + 1
        c0, c1 = inside_columns[0], inside_columns[-1] + 1
        selected = maps[chosen][:, r0:r1, c0:c1].double()
        window[:, r0 - top : r1 - top, c0 - left : c1 - left] = selected
    return [
        [[None if math.isnan(value) else value for value in row] for row in plane]
        for plane in window.tolist()
    ]
