"""Trained vs random first-layer filters, side by side and as one number.

Trained first layers learn smooth edge and colour-blob detectors; a fresh initialisation is
independent noise per weight. ``neighbour_correlation`` measures the difference: the correlation
between horizontally and vertically adjacent weights of the same filter slice (after removing
each slice's mean) — near 0 for noise, clearly positive for smooth learned filters.
"""

from dataclasses import dataclass

import numpy as np
from torch import nn

from app.core.filters import FilterBank, filter_bank
from app.core.registry import LoadedModel


@dataclass(frozen=True)
class FilterComparison:
    """The first conv layer's filters in the trained model and in its random twin."""

    layer: str
    trained: FilterBank
    random: FilterBank
    trained_neighbour_correlation: float
    random_neighbour_correlation: float


def neighbour_correlation(weight: np.ndarray) -> float:
    """Correlation of adjacent weights within each (kh, kw) slice of (O, I, kh, kw) filters.

    Pairs (w[y, x], w[y, x+1]) and (w[y, x], w[y+1, x]) are pooled over all slices; each slice
    is centred on its own mean first, so a filter's overall brightness does not count as
    smoothness. 0 when no slice has two weights or the weights are constant.
    """
    centred = weight - weight.mean(axis=(2, 3), keepdims=True)
    pairs = [
        (centred[..., :, :-1].ravel(), centred[..., :, 1:].ravel()),
        (centred[..., :-1, :].ravel(), centred[..., 1:, :].ravel()),
    ]
    first = np.concatenate([a for a, _ in pairs]).astype(np.float64)
    second = np.concatenate([b for _, b in pairs]).astype(np.float64)
    norm = float(np.sqrt((first * first).sum() * (second * second).sum()))
    return float((first * second).sum() / norm) if norm > 0 else 0.0


def first_conv_layer(model: LoadedModel) -> str:
    """The first ``nn.Conv2d`` the forward runs (the one that sees pixels), by module name.

    Raises:
        ValueError: the forward runs no ``nn.Conv2d`` (a functional ``F.conv2d`` has no module
            whose filters a twin could share).
    """
    for layer in model.layers:
        if isinstance(model.module_of(layer.name), nn.Conv2d):
            return str(layer.module)
    raise ValueError("the model runs no nn.Conv2d module, so it has no first-layer filters")


def compare_first_layer_filters(model: nn.Module, twin: nn.Module, layer: str) -> FilterComparison:
    """Filter banks of conv module ``layer`` of ``model`` and of ``twin`` (see ``random_init``)."""
    trained = filter_bank(layer, model.get_submodule(layer))
    random = filter_bank(layer, twin.get_submodule(layer))
    return FilterComparison(
        layer=layer,
        trained=trained,
        random=random,
        trained_neighbour_correlation=neighbour_correlation(trained.weight),
        random_neighbour_correlation=neighbour_correlation(random.weight),
    )
