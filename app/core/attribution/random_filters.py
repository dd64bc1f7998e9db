"""Trained vs random first-layer filters, side by side and as one number.

Trained first layers often learn smooth edge and colour-blob detectors; a fresh initialisation is
independent noise per weight. ``neighbour_correlation`` measures the difference: the correlation
between horizontally and vertically adjacent weights of the same filter slice (after removing
each slice's mean), corrected for chance — 0 for independent noise, 1 for neighbours that agree
exactly. The correction matters for small kernels: removing the mean of a 3×3 slice makes any
two of its weights correlate by −1/8 on average, so uncorrected noise scored −0.1 and a trained
3×3 stem near 0 read as "no structure" beside it. ``smoothness_verdict`` turns the two numbers
into the sentence the panel may say.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from app.core.filters import FilterBank, filter_bank
from app.core.registry import LoadedModel

SMOOTH = 0.3
"""Neighbour correlation from which filters count as smooth (LeNet's trained conv1: 0.42)."""
CLEARLY_ABOVE = 0.05
"""The least margin over the random twin that counts as "smoother than random"."""

Verdict = Literal["smooth", "slightly_smoother", "not_smoother"]


@dataclass(frozen=True)
class FilterComparison:
    """The first conv layer's filters in the trained model and in its random twin."""

    layer: str
    trained: FilterBank
    random: FilterBank
    trained_neighbour_correlation: float
    random_neighbour_correlation: float

    @property
    def verdict(self) -> Verdict:
        return smoothness_verdict(
            self.trained_neighbour_correlation, self.random_neighbour_correlation
        )


def raw_neighbour_correlation(weight: np.ndarray) -> float:
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


def chance_correlation(weight: np.ndarray) -> float:
    """What ``raw_neighbour_correlation`` expects of independent weights: −1/(n − 1) for slices of
    n weights (centring makes the n deviations sum to 0, so each pair shares −1/(n − 1) of the
    variance; exact for the weights shuffled within their slices)."""
    count = weight.shape[2] * weight.shape[3]
    return -1.0 / (count - 1) if count > 1 else 0.0


def neighbour_correlation(weight: np.ndarray) -> float:
    """``raw_neighbour_correlation`` rescaled so independent weights give 0 and equal
    neighbours 1: (r − r₀) / (1 − r₀) with r₀ = ``chance_correlation``."""
    if not (weight - weight.mean(axis=(2, 3), keepdims=True)).any():
        return 0.0  # constant slices (or 1×1 kernels): no neighbours that could differ
    chance = chance_correlation(weight)
    return (raw_neighbour_correlation(weight) - chance) / (1.0 - chance)


def smoothness_verdict(trained: float, random: float) -> Verdict:
    """What the two neighbour correlations support: "smooth" (the trained filters are smooth and
    clearly smoother than random), "slightly_smoother" or "not_smoother"."""
    if trained - random < CLEARLY_ABOVE:
        return "not_smoother"
    return "smooth" if trained >= SMOOTH else "slightly_smoother"


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
