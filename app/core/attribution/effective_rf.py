"""Effective receptive field (Luo et al. 2016): which input pixels really move one unit.

The theoretical field of a unit is a square of ``size`` pixels; every pixel in it *can* change the
unit. How much each one does is the input gradient |∂unit/∂x|, summed over colour channels: it
is exactly zero outside the square, and in a trained network it is a blob much smaller than the
square. ``effective_size`` condenses that: the side of the smallest square, centred like the
theoretical one, holding ``MASS_FRACTION`` of the gradient.
"""

from dataclasses import dataclass

import torch
from torch import nn

from app.core.attribution.hooks import (
    forward_to_layer,
    gradients_enabled,
    model_device,
    model_dtype,
)
from app.core.receptive_field import Box, ReceptiveField, clip_box, receptive_field_box

MASS_FRACTION = 0.95


@dataclass(frozen=True)
class EffectiveReceptiveField:
    """|∂unit/∂x| over the input (H, W), the theoretical box, and how the mass is spread."""

    layer: str
    channel: int | None
    y: int
    x: int
    activation: float
    gradient: torch.Tensor
    box: Box
    clipped: Box
    mass_in_box: float
    effective_size: int


def effective_receptive_field(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    field: ReceptiveField,
    y: int,
    x: int,
    channel: int | None = None,
) -> EffectiveReceptiveField:
    """Input-gradient map of unit (y, x) of ``layer`` (one channel, or all channels summed).

    Raises:
        KeyError: no such layer.
        ValueError: the layer is not a feature map, the unit/channel is out of range, or this
            input's forward does not reach the layer (``LayerNotRunError``).
    """
    batch = inputs.detach().to(model_device(model), model_dtype(model)).unsqueeze(0)
    with gradients_enabled():
        leaf = batch.requires_grad_(True)
        output = forward_to_layer(model, layer, leaf)
        unit = _unit(output, layer, y, x, channel)
        (gradient,) = torch.autograd.grad(unit, leaf)
    magnitude = gradient[0].abs().sum(dim=0).detach().cpu()
    height, width = magnitude.shape
    box = receptive_field_box(field, y, x, (height, width))
    clipped = clip_box(box, height, width)
    mass = magnitude.double()
    total = float(mass.sum())
    inside = float(mass[clipped.top : clipped.bottom + 1, clipped.left : clipped.right + 1].sum())
    return EffectiveReceptiveField(
        layer=layer,
        channel=channel,
        y=y,
        x=x,
        activation=float(unit.detach()),
        gradient=magnitude,
        box=box,
        clipped=clipped,
        mass_in_box=inside / total if total > 0 else 0.0,
        effective_size=mass_square_size(magnitude, box),
    )


def _unit(output: torch.Tensor, layer: str, y: int, x: int, channel: int | None) -> torch.Tensor:
    if output.ndim != 4:
        raise ValueError(
            f"layer {layer!r} outputs shape {tuple(output.shape[1:])}, not a feature map"
        )
    channels, height, width = output.shape[1:]
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"layer {layer!r} has units y 0..{height - 1}, x 0..{width - 1}")
    if channel is None:
        return output[0, :, y, x].sum()
    if not 0 <= channel < channels:
        raise ValueError(f"layer {layer!r} has channels 0..{channels - 1}")
    return output[0, channel, y, x]


def mass_square_size(magnitude: torch.Tensor, box: Box, fraction: float = MASS_FRACTION) -> int:
    """Side of the smallest square centred on ``box`` holding ``fraction`` of the mass.

    Squares grow by one pixel on every side up to the box itself; parts outside the image count
    as empty. A map without any mass has size 0.
    """
    magnitude = magnitude.double()
    total = float(magnitude.sum())
    if total <= 0:
        return 0
    height, width = magnitude.shape
    side = max(box.height, box.width)
    centre_y2, centre_x2 = box.top + box.bottom, box.left + box.right  # twice the centre
    for size in range(2 - side % 2, side + 1, 2):
        top, left = (centre_y2 - size + 1) // 2, (centre_x2 - size + 1) // 2
        square = clip_box(Box(top, left, top + size - 1, left + size - 1), height, width)
        mass = magnitude[square.top : square.bottom + 1, square.left : square.right + 1].sum()
        if float(mass) >= fraction * total:
            return size
    return side
