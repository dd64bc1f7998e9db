"""Occlusion sensitivity (Zeiler & Fergus 2014): cover part of the image, see how the score drops.

A ``window`` slides over the input in steps of ``stride``; every covered pixel gets the ``fill``
value (grey, or the background of a digit). Window positions follow Captum's ``Occlusion``: along
an axis of length n the offsets are 0, s, 2s, … ceil((n − w) / s) · s, the last window clipped at
the edge, so maps are comparable one to one. All occluded copies are scored in batches of
``batch_size`` images, which is the whole point: a 224×224 map is a few forward passes, not
hundreds.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from app.core.attribution.hooks import class_index_of, model_device, model_dtype


@dataclass(frozen=True)
class Occlusion:
    """Score drops per window position, and per pixel (the mean over windows covering it).

    ``drops[i, j]`` = score(input) − score(input with the window at offsets
    (``rows[i]``, ``cols[j]``) filled); positive means the covered region supported the class.
    """

    class_index: int
    score: float
    window: tuple[int, int]
    stride: tuple[int, int]
    rows: list[int]
    cols: list[int]
    drops: torch.Tensor
    pixel_map: torch.Tensor


def window_offsets(length: int, window: int, stride: int) -> list[int]:
    """Captum's offsets along one axis: 0, stride, … until a window reaches the far edge.

    Raises:
        ValueError: the window is empty or longer than the axis, or the stride is not positive.
    """
    if not 1 <= window <= length:
        raise ValueError(f"window {window} must be between 1 and the image size {length}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    return [step * stride for step in range(math.ceil((length - window) / stride) + 1)]


def occlusion(
    model: nn.Module,
    inputs: torch.Tensor,
    window: tuple[int, int],
    stride: tuple[int, int],
    fill: torch.Tensor,
    class_index: int | None = None,
    batch_size: int = 32,
) -> Occlusion:
    """Occlusion map of one (C, H, W) input; ``fill`` is one value per channel (model units).

    Raises:
        ValueError: bad window, stride, batch size, fill shape or class index.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    channels, height, width = inputs.shape
    rows = window_offsets(height, window[0], stride[0])
    cols = window_offsets(width, window[1], stride[1])
    image = inputs.detach().to(model_device(model), model_dtype(model))
    fill_column = fill.to(image.device, image.dtype).reshape(-1, 1, 1)
    if fill_column.shape[0] not in (1, channels):
        raise ValueError(f"fill needs 1 or {channels} values, got {fill_column.shape[0]}")
    positions = [(top, left) for top in rows for left in cols]
    scores = []
    with torch.inference_mode():
        logits = model(image.unsqueeze(0))
        index = class_index_of(logits, class_index)
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            batch = image.expand(len(chunk), -1, -1, -1).clone()
            for item, (top, left) in enumerate(chunk):
                batch[item, :, top : top + window[0], left : left + window[1]] = fill_column
            scores.append(model(batch)[:, index])
        base = logits[0, index]
        drops = (base - torch.cat(scores)).reshape(len(rows), len(cols)).cpu()
    return Occlusion(
        class_index=index,
        score=float(base),
        window=window,
        stride=stride,
        rows=rows,
        cols=cols,
        drops=drops,
        pixel_map=_pixel_map(drops, rows, cols, window, (height, width)),
    )


def _pixel_map(
    drops: torch.Tensor,
    rows: list[int],
    cols: list[int],
    window: tuple[int, int],
    size: tuple[int, int],
) -> torch.Tensor:
    """Per pixel, the mean drop of the windows that covered it (as Captum attributes it)."""
    total = torch.zeros(size, dtype=torch.float64)
    count = torch.zeros(size, dtype=torch.float64)
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            total[top : top + window[0], left : left + window[1]] += float(drops[i, j])
            count[top : top + window[0], left : left + window[1]] += 1.0
    return (total / count.clamp(min=1.0)).to(drops.dtype)
