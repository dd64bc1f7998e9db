"""Numbers the panel's sentences quote about a heatmap, so each claim is measured, not assumed.

``speckle``: how much a map changes from one pixel to the next, relative to its mean, as it is
drawn (scaled to a quantile and clipped, like ``colormap.sequential_png``). A map of isolated hot
pixels scores high, smooth blobs score low; SmoothGrad's sentence compares it with the plain
gradient's. ``blank_mask`` and ``heat_share``: which input pixels are the model's blank background
(the spec's occlusion fill, the paper of a digit) and how much of a Grad-CAM map's heat lies there.
"""

import numpy as np
import torch

from app.core.attribution.colormap import scale_by_max

BLANK_TOLERANCE = 0.5 / 255
"""A pixel within half a grey level of the blank value is blank."""


def speckle(values: np.ndarray, quantile: float = 1.0) -> float:
    """Mean |difference| of horizontally and vertically adjacent pixels over the mean pixel,
    of the non-negative (H, W) map scaled by its ``quantile`` and clipped to [0, 1].

    0 for a constant map (or one without any mass); about 1 for independent noise.
    """
    unit = np.clip(scale_by_max(values, quantile), 0.0, 1.0)
    mean = float(unit.mean()) if unit.size else 0.0
    if mean <= 0:
        return 0.0
    across = np.abs(np.diff(unit, axis=1))
    down = np.abs(np.diff(unit, axis=0))
    pairs = across.size + down.size
    if pairs == 0:
        return 0.0
    return float((across.sum() + down.sum()) / pairs / mean)


def blank_mask(
    inputs: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], fill: float
) -> torch.Tensor:
    """(H, W) bool: pixels of the normalised (C, H, W) input at the blank value in every channel."""
    shift = torch.tensor(mean, dtype=inputs.dtype).reshape(-1, 1, 1)
    scale = torch.tensor(std, dtype=inputs.dtype).reshape(-1, 1, 1)
    pixels = inputs.detach().cpu() * scale + shift
    return ((pixels - fill).abs() <= BLANK_TOLERANCE).all(dim=0)


def heat_share(heat: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of a non-negative map's total on the ``mask`` pixels (0 for an empty map)."""
    total = float(heat.double().sum())
    return float(heat.double()[mask].sum()) / total if total > 0 else 0.0
