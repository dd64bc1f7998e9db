"""Learned convolution filters as numbers and as atlas PNGs.

RGB first layers are shown as colour tiles (each filter stretched by its own min/max, as in the
AlexNet and Zeiler & Fergus figures). Other filters are shown per input channel on a diverging grey
scale where mid-grey is 0, scaled by each output filter's largest |weight|, so the sign is readable.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from app.core.encode import Atlas, AtlasLayout, grid_layout, png_bytes, tile


@dataclass(frozen=True)
class FilterBank:
    """One conv layer's weights and how they are drawn."""

    layer: str
    weight: np.ndarray  # (O, I/groups, kh, kw) float32
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    groups: int
    rgb: bool
    atlas: Atlas

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.weight.shape[1] == 1


def rgb_filter_atlas(weight: np.ndarray) -> Atlas:
    """(O, 3, kh, kw) → O colour tiles, each scaled by its own min/max."""
    flat = weight.reshape(weight.shape[0], -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = (weight - lo[:, None, None, None]) / span[:, None, None, None] * 255.0
    tiles = np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)  # (O, kh, kw, 3)
    layout = grid_layout(weight.shape[0], weight.shape[2], weight.shape[3])
    return Atlas(
        png_bytes(tile(tiles, layout, fill=255)), layout, "filter", lo.tolist(), hi.tolist()
    )


def diverging_filter_atlas(weight: np.ndarray) -> Atlas:
    """(O, I, kh, kw) → grid with one row per output filter and one column per input channel.

    Depthwise banks (I == 1) are laid out as a near-square grid instead of a single column.
    """
    out_channels, in_channels, kh, kw = weight.shape
    absmax = np.abs(weight.reshape(out_channels, -1)).max(axis=1)
    safe = np.where(absmax > 0, absmax, 1.0)
    scaled = 127.5 + 127.5 * weight / safe[:, None, None, None]
    tiles = np.rint(scaled).astype(np.uint8).reshape(out_channels * in_channels, kh, kw)
    gap = 1 if kh * kw > 1 else 0
    if in_channels == 1:
        layout = grid_layout(out_channels, kh, kw, gap)
    else:
        layout = AtlasLayout(out_channels * in_channels, in_channels, out_channels, kh, kw, gap)
    return Atlas(
        png_bytes(tile(tiles, layout, fill=255)),
        layout,
        "filter",
        (-absmax).tolist(),
        absmax.tolist(),
    )


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def filter_bank(name: str, conv: nn.Conv2d) -> FilterBank:
    """Weights, hyper-parameters and the atlas of one conv layer."""
    weight = conv.weight.detach().float().cpu().contiguous().numpy()
    rgb = weight.shape[1] == 3 and conv.groups == 1
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    return FilterBank(
        layer=name,
        weight=weight,
        bias=None if conv.bias is None else conv.bias.detach().float().cpu().numpy(),
        stride=_pair(conv.stride),
        padding=padding,
        dilation=_pair(conv.dilation),
        groups=conv.groups,
        rgb=rgb,
        atlas=rgb_filter_atlas(weight) if rgb else diverging_filter_atlas(weight),
    )


def conv_modules(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every conv layer by dotted name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def filter_values(conv: nn.Conv2d, out_channel: int) -> tuple[np.ndarray, float | None]:
    """Exact weights (I/groups, kh, kw) and bias of one output filter."""
    weight = conv.weight.detach()[out_channel].float().cpu().contiguous().numpy()
    bias = None if conv.bias is None else float(conv.bias.detach()[out_channel])
    return weight, bias


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Detached float32 numpy view of a CPU tensor (for encoding)."""
    return tensor.detach().float().cpu().numpy()
