"""Grad-CAM (Selvaraju et al. 2017): where in the image a layer's evidence for a class lies.

With A the layer's (K, h, w) output and y the class logit, each channel gets the weight
α_k = mean over positions of ∂y/∂A_k, and the map is ReLU(Σ_k α_k A_k). The layer's output is
tapped as a leaf (``LayerTap`` "leaf" mode), so the backward pass runs only through the layers
after it and never differentiates the parameters.
"""

from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from app.core.attribution.hooks import (
    LayerTap,
    class_index_of,
    gradients_enabled,
    model_device,
    model_dtype,
)
from app.core.receptive_field import ReceptiveField
from app.core.registry import LoadedModel


@dataclass(frozen=True)
class GradCam:
    """A class activation map at the layer's resolution and stretched to the input.

    ``cam`` is the raw (h, w) ReLU(Σ α_k A_k); ``upsampled`` is it stretched to the input's
    (H, W) and scaled to [0, 1] by its own range (all zeros when the map is flat).
    """

    layer: str
    class_index: int
    score: float
    weights: torch.Tensor
    cam: torch.Tensor
    upsampled: torch.Tensor


def stretch_to_input(
    cam: torch.Tensor, field: ReceptiveField | None, size: tuple[int, int]
) -> torch.Tensor:
    """Bilinear resize of an (h, w) map to the input, each unit placed at its field's centre.

    Unit (i, j) sees input pixels centred on ``start + (i, j) * jump``; interpolating between
    those centres (and holding the edge values beyond them) keeps the map over the pixels it is
    about. A plain resize assumes the units tile the image evenly, which is off by several pixels
    for unpadded convolutions (LeNet's 10×10 ``conv2`` sees pixels 0–27 but is centred on 4.5–22.5).
    Without a field (or with a global one) the plain resize is used.
    """
    if field is None or field.is_global:
        return functional.interpolate(
            cam[None, None], size=size, mode="bilinear", align_corners=False
        )[0, 0]
    axes = []
    for axis in (0, 1):
        units = cam.shape[axis]
        position = (torch.arange(size[axis], dtype=cam.dtype) - field.start[axis]) / field.jump[
            axis
        ]
        axes.append(2 * position / (units - 1) - 1 if units > 1 else torch.zeros_like(position))
    grid_y, grid_x = torch.meshgrid(axes[0], axes[1], indexing="ij")
    grid = torch.stack((grid_x, grid_y), dim=-1)[None].to(cam.device)
    return functional.grid_sample(
        cam[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )[0, 0]


def grad_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    class_index: int | None = None,
    field: ReceptiveField | None = None,
) -> GradCam:
    """Grad-CAM of one (C, H, W) input at ``layer`` for ``class_index`` (default: top class).

    ``field`` (the layer's receptive field) places the map over the input exactly; see
    ``stretch_to_input``.

    Raises:
        KeyError: no such layer.
        ValueError: the layer's output is not a (N, K, h, w) feature map, the class index is out
            of range, or this input's forward does not reach the layer (``LayerNotRunError``).
    """
    batch = inputs.detach().to(model_device(model), model_dtype(model)).unsqueeze(0)
    with gradients_enabled(), LayerTap(model, layer, "leaf") as tap:
        logits = tap.run(batch)
        activation = tap.output
        if activation is None or activation.ndim != 4:
            shape = None if activation is None else tuple(activation.shape[1:])
            raise ValueError(f"layer {layer!r} outputs shape {shape}, not a feature map")
        index = class_index_of(logits, class_index)
        score = logits[0, index]
        (gradient,) = torch.autograd.grad(score, activation)
        if tap.channels_last:  # (N, H, W, C) values and gradients, as the layer made them
            activation, gradient = activation.permute(0, 3, 1, 2), gradient.permute(0, 3, 1, 2)
    weights = gradient[0].mean(dim=(1, 2))
    cam = torch.relu(torch.einsum("k,khw->hw", weights, activation[0].detach()))
    resized = stretch_to_input(cam, field, (inputs.shape[-2], inputs.shape[-1]))
    low, high = resized.min(), resized.max()
    upsampled = (resized - low) / (high - low) if high > low else torch.zeros_like(resized)
    return GradCam(
        layer=layer,
        class_index=index,
        score=float(score.detach()),
        weights=weights.cpu(),
        cam=cam.cpu(),
        upsampled=upsampled.cpu(),
    )


FEATURE_MAP_KINDS = frozenset(("conv", "depthwise_conv", "batchnorm", "norm", "activation"))
FEATURE_MAP_KINDS |= {"linear", "add", "mul", "cat", "block"}
"""Layers whose spatial output is a feature map the network computes on (a channels-last linear
is a 1×1 conv; an add, gate or concatenation is what the next layer reads). Pools and flattens
only reshape one."""


def default_cam_layer(model: LoadedModel, ran: Collection[str] | None = None) -> str | None:
    """Grad-CAM's layer: the spec's ``display.gradcam_layer``, else the usual choice, the last
    spatial feature map before pooling to a vector.

    ``ran``: the layers this input's forward reached, for models whose forward branches on the
    input (None: every layer).
    """
    reached = [layer for layer in model.layers if ran is None or layer.name in ran]
    if model.spec.gradcam_layer in {layer.name for layer in reached}:
        return model.spec.gradcam_layer
    maps = [
        layer.name
        for layer in reached
        if layer.kind in FEATURE_MAP_KINDS
        and len(layer.output_shape) == 3
        and layer.output_shape[1] * layer.output_shape[2] > 1
    ]
    return maps[-1] if maps else None
