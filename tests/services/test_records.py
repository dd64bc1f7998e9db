"""Analysis records survive the trip through a shared store bit for bit, without pickle."""

import hashlib
import json
import math

import pytest
import torch
from safetensors.torch import load as load_safetensors

from app.core.analysis import LayerStats, Prediction
from app.services.records import (
    AnalysisRecord,
    RecordFormatError,
    make_analysis_id,
    record_from_fields,
    record_to_fields,
)


def sample_record() -> AnalysisRecord:
    generator = torch.Generator().manual_seed(3)
    return AnalysisRecord(
        analysis_id=make_analysis_id("lenet5-mnist", "ab" * 32),
        model_id="lenet5-mnist",
        content_sha256="ab" * 32,
        input=torch.randn(1, 28, 28, generator=generator),
        logits=[0.1, -2.5, 1e-8, 3.141592653589793],
        predictions=[Prediction(3, "3", 0.75), Prediction(0, "0", 0.125)],
        layers=[LayerStats("conv1", "conv", (6, 28, 28), -1.5, 2.25, 0.1, 0.0)],
        created_at=1_700_000_000.25,
    )


def test_round_trip_is_exact() -> None:
    record = sample_record()
    fields = {key.encode(): value for key, value in record_to_fields(record).items()}
    restored = record_from_fields(fields)
    assert torch.equal(restored.input, record.input) and restored.input.dtype == torch.float32
    assert restored.layers[0].shape == (6, 28, 28)
    assert {**vars(restored), "input": None} == {**vars(record), "input": None}


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_a_record_with_numbers_that_are_not_finite_round_trips_too(value: float) -> None:
    """A layer that overflows has an infinite max and mean; JSON without NaN/Infinity (orjson's
    null) would turn the record unreadable, so such a record is written the other way."""
    record = sample_record()
    layer = LayerStats("conv1", "conv", (6, 28, 28), -1.5, value, value, 0.0)
    record = AnalysisRecord(**{**vars(record), "layers": [layer], "logits": [value, 0.5]})
    fields = {key.encode(): value for key, value in record_to_fields(record).items()}
    restored = record_from_fields(fields)
    assert restored.layers == [layer] and restored.logits == [value, 0.5]


def test_a_nan_statistic_round_trips_as_nan() -> None:
    record = sample_record()
    layer = LayerStats("conv1", "conv", (6, 28, 28), math.nan, math.nan, math.nan, 0.0)
    record = AnalysisRecord(**{**vars(record), "layers": [layer]})
    fields = {key.encode(): value for key, value in record_to_fields(record).items()}
    restored = record_from_fields(fields).layers[0]
    assert math.isnan(restored.min) and math.isnan(restored.max) and math.isnan(restored.mean)


def test_the_stored_form_is_safetensors_and_json_only() -> None:
    fields = record_to_fields(sample_record())
    assert set(fields) == {"input", "meta"}
    assert load_safetensors(fields["input"]).keys() == {"input"}
    meta = json.loads(fields["meta"])
    assert meta["analysis_id"] == make_analysis_id("lenet5-mnist", "ab" * 32)
    assert meta["predictions"][1] == {"index": 0, "label": "0", "probability": 0.125}


def test_analysis_id_is_the_model_and_content_hash() -> None:
    expected = hashlib.sha256(b"efficientnet-lite0\n" + b"cd" * 32).hexdigest()[:32]
    assert make_analysis_id("efficientnet-lite0", "cd" * 32) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"meta": b"{}", b"input": b""},
        {b"meta": b"not json", b"input": b""},
        {b"meta": b'{"analysis_id": "x"}', b"input": b"\x00" * 8},
    ],
)
def test_malformed_fields_are_a_format_error(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(RecordFormatError):
        record_from_fields(fields)
