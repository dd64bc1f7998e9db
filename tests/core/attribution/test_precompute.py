"""The offline commands' helpers: channel lists and single-model loading."""

import pytest
import torch

from app.config import REPO_ROOT
from app.core.attribution.feature_vis import FeatureVisOptions
from app.core.attribution.feature_vis_store import FeatureVisStore
from app.core.attribution.precompute import (
    load_spec_model,
    parse_channels,
    precompute_feature_vis,
)


def test_parse_channels() -> None:
    assert parse_channels(None, 3) == [0, 1, 2]
    assert parse_channels("4, 0-2,2", 6) == [0, 1, 2, 4]
    for bad in ("6", "2-1", "x", "1-"):
        with pytest.raises(ValueError, match="channels"):
            parse_channels(bad, 6)


def test_precompute_skips_what_is_stored(tmp_path) -> None:
    model = load_spec_model(REPO_ROOT / "models", "lenet5-mnist", torch.device("cpu"))
    store = FeatureVisStore(tmp_path)
    options = FeatureVisOptions(steps=2)
    first = list(precompute_feature_vis(model, "conv1", [0, 5], options, store))
    again = list(precompute_feature_vis(model, "conv1", [5], options, store))
    assert [(channel, fresh) for channel, _, fresh in first] == [(0, True), (5, True)]
    assert [(channel, fresh) for channel, _, fresh in again] == [(5, False)]
    assert again[0][1].png == first[1][1].png
    known = ", ".join(path.stem for path in sorted((REPO_ROOT / "models").glob("*.toml")))
    assert "lenet5-mnist" in known
    with pytest.raises(ValueError, match=rf"^no model 'nope' \(known: {known}\)$"):
        load_spec_model(REPO_ROOT / "models", "nope", torch.device("cpu"))
