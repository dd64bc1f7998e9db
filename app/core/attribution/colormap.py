"""Heatmaps → coloured PNGs, server-side, so every client (page, curl, notebook) sees one picture.

Two palettes: a sequential one (black → purple → orange → pale yellow, anchors taken from
matplotlib's "inferno") for magnitudes where zero means "no effect", and a diverging one
(blue → white → red, ColorBrewer RdBu) for signed maps such as the occlusion score drop.
"""

import numpy as np

from app.core.encode import png_bytes

SEQUENTIAL_ANCHORS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)
DIVERGING_ANCHORS = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], dtype=np.float64)
OVERLAY_MAX_ALPHA = 200
"""Opacity of the hottest overlay pixel (of 255): the input stays visible under the heat."""


PALETTE_SIZE = 255
"""Odd, so the middle entry sits exactly at 0.5: zero of a diverging map is exactly white."""


def _palette(anchors: np.ndarray) -> np.ndarray:
    """A uint8 lookup table interpolated linearly between evenly spaced anchors."""
    positions = np.linspace(0.0, 1.0, len(anchors))
    steps = np.linspace(0.0, 1.0, PALETTE_SIZE)
    table = np.stack([np.interp(steps, positions, anchors[:, c]) for c in range(3)], axis=1)
    return np.rint(table).astype(np.uint8)


SEQUENTIAL = _palette(SEQUENTIAL_ANCHORS)
DIVERGING = _palette(DIVERGING_ANCHORS)


def scale_by_max(values: np.ndarray, quantile: float = 1.0) -> np.ndarray:
    """Non-negative ``values`` over their ``quantile`` (1.0: the maximum); 0 keeps meaning 0.

    A quantile below 1 saturates the few largest values, so a map whose mass is spread thinly
    (a raw gradient, with a handful of extreme pixels) stays visible.
    """
    values = np.asarray(values, dtype=np.float64)
    peak = float(np.quantile(values, quantile)) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def _indices(unit: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(unit, 0.0, 1.0) * (PALETTE_SIZE - 1)).astype(np.uint8)


def sequential_png(values: np.ndarray, quantile: float = 1.0) -> bytes:
    """(H, W) non-negative map → RGB PNG, 0 black and the ``quantile`` and above pale yellow."""
    return png_bytes(SEQUENTIAL[_indices(scale_by_max(values, quantile))])


def overlay_png(values: np.ndarray) -> bytes:
    """(H, W) non-negative map → RGBA PNG to lay over the input: cold pixels transparent."""
    unit = scale_by_max(values)
    rgba = np.empty((*unit.shape, 4), dtype=np.uint8)
    rgba[..., :3] = SEQUENTIAL[_indices(unit)]
    rgba[..., 3] = np.rint(np.clip(unit, 0.0, 1.0) * OVERLAY_MAX_ALPHA).astype(np.uint8)
    return png_bytes(rgba)


def diverging_png(values: np.ndarray) -> bytes:
    """(H, W) signed map → RGB PNG: 0 white, +max red, −max blue (symmetric around zero)."""
    values = np.asarray(values, dtype=np.float64)
    peak = float(np.abs(values).max()) if values.size else 0.0
    unit = 0.5 + 0.5 * values / peak if peak > 0 else np.full(values.shape, 0.5)
    return png_bytes(DIVERGING[_indices(unit)])


def diverging_legend_png(height: int = 1) -> bytes:
    """The diverging palette as a bar (−max at the left, 0 in the middle, +max at the right), so
    a legend is drawn with exactly the colours of the map it explains."""
    return png_bytes(np.repeat(DIVERGING[None], height, axis=0))
