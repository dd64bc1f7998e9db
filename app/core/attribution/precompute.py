"""Offline work behind ``convlens feature-vis`` and ``convlens top-patches``.

Both load one spec'd model (not the whole registry) and write where the server reads: the
feature-visualization disk store, and the top-patches file beside the weights.
"""

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from app.core.attribution.feature_vis import FeatureVisOptions
from app.core.attribution.feature_vis_store import FeatureVisStore, StoredFeatureVis
from app.core.attribution.resources import (
    model_feature_vis_key,
    private_copy,
    render_feature_vis,
)
from app.core.registry import LoadedModel, load_model, read_model_specs


def load_spec_model(
    models_dir: Path, model_id: str, device: torch.device, extra: Iterable[Path] = ()
) -> LoadedModel:
    """One model (bundled or the operator's own), checked like the server checks it.

    Raises:
        ValueError: no spec has that id.
    """
    specs = read_model_specs(models_dir, extra)
    for spec in specs:
        if spec.id == model_id:
            return load_model(spec, device)
    known = ", ".join(spec.id for spec in specs)
    raise ValueError(f"no model {model_id!r} (known: {known})")


def parse_channels(text: str | None, count: int) -> list[int]:
    """``"0-3,7"`` → [0, 1, 2, 3, 7]; None → every channel.

    Raises:
        ValueError: malformed, or a channel outside 0..count-1.
    """
    if text is None:
        return list(range(count))
    channels: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if match is None:
            raise ValueError(f"channels: {part!r} is not a number or a range like 0-7")
        low, high = int(match[1]), int(match[2] or match[1])
        if not 0 <= low <= high < count:
            raise ValueError(f"channels: {part!r} is outside 0..{count - 1}")
        channels.extend(range(low, high + 1))
    return sorted(set(channels))


def precompute_feature_vis(
    model: LoadedModel,
    layer: str,
    channels: list[int],
    options: FeatureVisOptions,
    store: FeatureVisStore,
) -> Iterator[tuple[int, StoredFeatureVis, bool]]:
    """Visualize each channel not yet stored; yields (channel, result, computed now)."""
    network = private_copy(model)
    for channel in channels:
        stored = store.get(model_feature_vis_key(model, layer, channel, options))
        if stored is not None:
            yield channel, stored, False
            continue
        yield channel, render_feature_vis(model, network, layer, channel, options, store), True
