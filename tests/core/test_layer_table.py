"""Layer tables kept between starts: read back exactly, and never trusted when anything changed."""

from pathlib import Path

import pytest
import torch

from app.config import REPO_ROOT
from app.core import registry
from app.core.model_spec import read_spec
from app.core.registry import load_model

SPEC = REPO_ROOT / "models" / "efficientnet-lite0.toml"
CPU = torch.device("cpu")


def test_a_second_start_reads_the_table_instead_of_tracing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = read_spec(SPEC)
    traced = load_model(spec, CPU)
    first = load_model(spec, CPU, tmp_path)
    assert (tmp_path / "efficientnet-lite0.json").is_file()

    def refuse(*_args: object) -> None:
        raise AssertionError("traced again although the table was stored")

    monkeypatch.setattr(registry, "describe_layers", refuse)
    monkeypatch.setattr(registry, "_check_output", refuse)
    second = load_model(spec, CPU, tmp_path)
    assert second.layers == first.layers
    assert second.program.channels_last == first.program.channels_last
    assert second.layers == traced.layers  # the same as a fresh trace


def test_a_damaged_or_foreign_table_is_ignored_and_rewritten(tmp_path: Path) -> None:
    spec = read_spec(REPO_ROOT / "models" / "lenet5-mnist.toml")
    fresh = load_model(spec, CPU, tmp_path).layers
    table = tmp_path / "lenet5-mnist.json"
    table.write_text(table.read_text()[:100])  # cut short
    assert load_model(spec, CPU, tmp_path).layers == fresh
    stored = table.read_text()
    table.write_text(stored.replace('"key": "', '"key": "0'))  # written for something else
    assert load_model(spec, CPU, tmp_path).layers == fresh
    assert table.read_text() == stored
