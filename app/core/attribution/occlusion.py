"""Occlusion sensitivity (Zeiler & Fergus 2014): cover part of the image, see how the score drops.

A ``window`` slides over the input in steps of ``stride``; every covered pixel gets the ``fill``
value (grey, or the background of a digit). Window positions follow Captum's ``Occlusion``: along
an axis of length n the offsets are 0, s, 2s, … ceil((n − w) / s) · s, the last window clipped at
the edge, so maps are comparable one to one.

Speed comes from not recomputing what a window cannot change. When the forward is a chain of
stages with a local first stage (``local_forward.chain_of``), the first stages run only on a crop
around the window's growing footprint, until that footprint covers ``LOCAL_SHARE`` of a stage's
map; from there the occluded copies run as full maps in batches of ``batch_size``. Other models
run every occluded copy in full, batched. Either way the scores equal one forward per copy up to
float rounding.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from app.core.attribution.hooks import class_index_of, model_device, model_dtype
from app.core.attribution.local_forward import (
    Change,
    Stage,
    chain_of,
    clean_maps,
    local_shares,
    paste,
    propagate,
)
from app.core.attribution.progress import Progress

LOCAL_SHARE = 0.25
"""Crops stop paying off once a window's footprint covers this share of a stage's map."""


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
    batch_size: int = 16,
    local: bool = True,
    progress: Progress | None = None,
) -> Occlusion:
    """Occlusion map of one (C, H, W) input; ``fill`` is one value per channel (model units).

    ``local=False`` forces full forwards of every occluded copy (the reference path).
    ``progress`` counts window positions and stops the loop between batches when cancelled.

    Raises:
        ValueError: bad window, stride, batch size, fill shape or class index.
        Cancelled: ``progress`` was cancelled.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    progress = progress or Progress()
    channels, height, width = inputs.shape
    rows = window_offsets(height, window[0], stride[0])
    cols = window_offsets(width, window[1], stride[1])
    image = inputs.detach().to(model_device(model), model_dtype(model))
    fill_column = fill.to(image.device, image.dtype).reshape(-1, 1, 1)
    if fill_column.shape[0] not in (1, channels):
        raise ValueError(f"fill needs 1 or {channels} values, got {fill_column.shape[0]}")
    regions = [
        ((top, min(top + window[0], height) - 1), (left, min(left + window[1], width) - 1))
        for top in rows
        for left in cols
    ]
    progress.begin(len(regions))
    stages = chain_of(model, (channels, height, width)) if local else None
    with torch.inference_mode():
        if stages:
            maps = clean_maps(stages, image.unsqueeze(0))
            logits = maps[-1]
            index = class_index_of(logits, class_index)
            logits_of = _local_logits(stages, maps, regions, fill_column, batch_size, progress)
            scores = logits_of[:, index]
        else:
            logits = model(image.unsqueeze(0))
            index = class_index_of(logits, class_index)
            scores = _full_scores(model, image, regions, fill_column, index, batch_size, progress)
        base = logits[0, index]
        drops = (base - scores).reshape(len(rows), len(cols)).cpu()
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


Region = tuple[tuple[int, int], tuple[int, int]]


def _fill(region: Region, fill_column: torch.Tensor) -> torch.Tensor:
    (top, bottom), (left, right) = region
    return fill_column.expand(-1, bottom - top + 1, right - left + 1).unsqueeze(0)


def _full_scores(
    model: nn.Module,
    image: torch.Tensor,
    regions: list[Region],
    fill_column: torch.Tensor,
    index: int,
    batch_size: int,
    progress: Progress,
) -> torch.Tensor:
    scores = []
    for start in range(0, len(regions), batch_size):
        chunk = regions[start : start + batch_size]
        batch = image.expand(len(chunk), -1, -1, -1).clone()
        for item, ((top, bottom), (left, right)) in enumerate(chunk):
            batch[item, :, top : bottom + 1, left : right + 1] = fill_column
        scores.append(model(batch)[:, index])
        progress.advance(len(chunk))
    return torch.cat(scores)


def _local_logits(
    stages: list[Stage],
    maps: list[torch.Tensor],
    regions: list[Region],
    fill_column: torch.Tensor,
    batch_size: int,
    progress: Progress,
) -> torch.Tensor:
    """Logits of the occluded copies: crops through the first stages, full maps after."""
    middle = regions[len(regions) // 2]
    shares = local_shares(stages, maps, middle)
    switch = next((i for i, share in enumerate(shares) if share > LOCAL_SHARE), len(shares))
    logits = []
    for start in range(0, len(regions), batch_size):
        chunk = regions[start : start + batch_size]
        changes: list[Change | None] = [
            Change(region, _fill(region, fill_column)) for region in chunk
        ]
        for depth in range(switch):
            out_hw = (maps[depth + 1].shape[2], maps[depth + 1].shape[3])
            changes = propagate(stages[depth], maps[depth], out_hw, changes)
        batch = paste(maps[switch], changes)
        for stage in stages[switch:]:
            batch = stage.module(batch)
        logits.append(batch)
        progress.advance(len(chunk))
    return torch.cat(logits)


@dataclass
class LiveOcclusion:
    """One model's clean forward kept for one image, so each dragged square costs only what it
    changes (the same exact local recomputation as the occlusion map)."""

    model: nn.Module
    image: torch.Tensor  # (C, H, W) on the model's device
    stages: list[Stage] | None
    maps: list[torch.Tensor] | None
    logits: torch.Tensor  # clean logits (1, K)

    @property
    def nbytes(self) -> int:
        held = [self.image, self.logits, *(self.maps or [])]
        return sum(tensor.numel() * tensor.element_size() for tensor in held)


def live_occlusion(model: nn.Module, inputs: torch.Tensor) -> LiveOcclusion:
    """Prepare an image for live occlusion: its clean stage maps (or none: full forwards)."""
    channels, height, width = inputs.shape
    image = inputs.detach().to(model_device(model), model_dtype(model))
    stages = chain_of(model, (channels, height, width))
    with torch.inference_mode():
        if stages:
            maps = clean_maps(stages, image.unsqueeze(0))
            return LiveOcclusion(model, image, stages, maps, maps[-1])
        return LiveOcclusion(model, image, None, None, model(image.unsqueeze(0)))


def occluded_logits(
    live: LiveOcclusion, top: int, left: int, size: int, fill: torch.Tensor
) -> torch.Tensor:
    """(K,) logits of the image with a ``size``×``size`` square at (top, left) filled, cut at the
    image's edges; equal to a full forward of that image up to float rounding.

    Raises:
        ValueError: the square lies outside the image, or the fill does not fit.
    """
    channels, height, width = live.image.shape
    if not (0 <= top < height and 0 <= left < width and size >= 1):
        raise ValueError(f"the square must start inside the {height}×{width} input")
    region = ((top, min(top + size, height) - 1), (left, min(left + size, width) - 1))
    fill_column = fill.to(live.image.device, live.image.dtype).reshape(-1, 1, 1)
    if fill_column.shape[0] not in (1, channels):
        raise ValueError(f"fill needs 1 or {channels} values, got {fill_column.shape[0]}")
    with torch.inference_mode():
        if live.stages and live.maps:
            return _local_logits(live.stages, live.maps, [region], fill_column, 1, Progress())[0]
        return _full_logits(live.model, live.image, region, fill_column)[0]


def _full_logits(
    model: nn.Module, image: torch.Tensor, region: Region, fill_column: torch.Tensor
) -> torch.Tensor:
    (top, bottom), (left, right) = region
    batch = image.unsqueeze(0).clone()
    batch[0, :, top : bottom + 1, left : right + 1] = fill_column
    return model(batch)


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
