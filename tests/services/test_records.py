"""Analysis records survive the trip through a shared store bit for bit, without pickle."""

import hashlib
import json
import math

import pytest
import torch
from safetensors.torch import load as load_safetensors

from app.core.analysis import LayerStats, Prediction
from app.core.pixels import PreprocessSpec
from app.core.preprocess import input_from_pixels
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


PHOTO_SPEC = PreprocessSpec(
    style="crop",
    channels=3,
    height=8,
    width=6,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    resize=8,
)


def pixel_record() -> AnalysisRecord:
    """A record as the server makes one: uint8 pixels, and the input normalised from them."""
    pixels = torch.randint(0, 256, (3, 8, 6), dtype=torch.uint8, generator=torch.Generator())
    return AnalysisRecord(
        **{
            **vars(sample_record()),
            "input": input_from_pixels(pixels.numpy(), PHOTO_SPEC),
            "pixels": pixels,
            "preprocess": PHOTO_SPEC,
            "weights_sha256": "cd" * 32,
        }
    )


def test_a_record_with_pixels_keeps_them_and_gives_the_input_back_to_the_bit() -> None:
    record = pixel_record()
    fields = record_to_fields(record)
    assert load_safetensors(fields["input"]).keys() == {"pixels"}
    assert json.loads(fields["meta"])["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    restored = record_from_fields({key.encode(): value for key, value in fields.items()})
    assert torch.equal(restored.input, record.input) and restored.input.dtype == torch.float32
    assert torch.equal(restored.pixels, record.pixels) and restored.pixels.dtype == torch.uint8
    assert restored.preprocess == PHOTO_SPEC
    assert {**vars(restored), "input": None, "pixels": None} == {
        **vars(record),
        "input": None,
        "pixels": None,
    }


def test_fractional_pixels_of_a_digit_round_trip_too() -> None:
    """MNIST-style centring makes float32 pixels in [0, 1]: they are kept as they are."""
    spec = PreprocessSpec(
        style="digit", channels=1, height=28, width=28, mean=(0.1307,), std=(0.3081,)
    )
    pixels = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(5))
    record = AnalysisRecord(
        **{
            **vars(sample_record()),
            "input": input_from_pixels(pixels.numpy(), spec),
            "pixels": pixels,
            "preprocess": spec,
        }
    )
    fields = {key.encode(): value for key, value in record_to_fields(record).items()}
    restored = record_from_fields(fields)
    assert torch.equal(restored.input, record.input) and torch.equal(restored.pixels, pixels)
    assert restored.preprocess == spec


def test_pixels_take_a_quarter_of_the_float_input() -> None:
    record = pixel_record()
    as_floats = AnalysisRecord(**{**vars(record), "pixels": None, "preprocess": None})
    pixel_bytes = len(record_to_fields(record)["input"])
    float_bytes = len(record_to_fields(as_floats)["input"])
    assert float_bytes - pixel_bytes == (4 - 1) * 3 * 8 * 6  # a byte a value instead of four


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
