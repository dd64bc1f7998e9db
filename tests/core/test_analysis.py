"""Predictions and layer statistics against numpy; batched analysis equals single analyses."""

import math

import numpy as np
import pytest
import torch

from app.config import REPO_ROOT
from app.core.analysis import (
    LayerStats,
    analyze,
    analyze_batch,
    layer_statistics,
    read_summaries,
    recompute_activations,
    summarize,
    top_predictions,
)
from app.core.model_spec import parse_spec
from app.core.registry import LoadedModel, ModelRegistry, build_model
from tests.helpers import TINY_CLASSES, assert_same_statistics, tiny_cnn, tiny_inputs

LABELS = ["zero", "one", "two", "three", "four"]


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    """The seeded tiny CNN, built from a spec the way every model is."""
    spec = parse_spec(
        {
            "id": "tiny",
            "name": "Tiny CNN",
            "description": "seeded test network",
            "entry_point": "tests.helpers:tiny_cnn",
            "weights": "tiny.safetensors",
            "labels": LABELS,
            "input": {"channels": 3, "height": 8, "width": 8},
            "preprocess": {"mean": [0, 0, 0], "std": [1, 1, 1]},
        },
        REPO_ROOT / "tests" / "tiny.toml",
    )
    return build_model(spec, tiny_cnn().state_dict(), torch.device("cpu"), "0" * 64)


def numpy_softmax(logits: list[float]) -> np.ndarray:
    values = np.array(logits, dtype=np.float64)
    exponentials = np.exp(values - values.max())
    return exponentials / exponentials.sum()


def test_top_predictions_match_numpy_softmax_in_descending_order() -> None:
    logits = [1.0, 3.0, -2.0, 3.5, 0.0]
    predictions = top_predictions(torch.tensor(logits), LABELS, k=5)
    assert [p.index for p in predictions] == [3, 1, 0, 4, 2]
    assert [p.label for p in predictions] == ["three", "one", "zero", "four", "two"]
    expected = numpy_softmax(logits)
    for prediction in predictions:
        assert prediction.probability == pytest.approx(expected[prediction.index], rel=1e-12)
    assert math.fsum(p.probability for p in predictions) == pytest.approx(1.0, abs=1e-12)


def test_top_predictions_k_is_capped_by_the_class_count() -> None:
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    assert [p.index for p in top_predictions(logits, LABELS, k=2)] == [2, 4]
    assert len(top_predictions(logits, LABELS, k=50)) == 5


def test_top_predictions_are_stable_for_huge_logits() -> None:
    predictions = top_predictions(torch.tensor([1000.0, 999.0]), ["a", "b"])
    # softmax([1, 0]) = (e / (e + 1), 1 / (e + 1))
    assert predictions[0].probability == pytest.approx(math.e / (math.e + 1), rel=1e-12)
    assert predictions[1].probability == pytest.approx(1 / (math.e + 1), rel=1e-12)


def every_layer(model: LoadedModel) -> list[str]:
    return [layer.name for layer in model.layers]


def test_statistics_at_the_tap_equal_statistics_of_the_kept_maps(model: LoadedModel) -> None:
    """The forward summarizes each layer as it runs; the maps it no longer keeps agree."""
    x = tiny_inputs(1, seed=9)[0]
    lean = analyze(model, x)
    assert lean.activations == {}
    full = analyze(model, x, keep=every_layer(model))
    assert_same_statistics(lean.layers, layer_statistics(model, full.activations))
    assert lean.logits == full.logits


def test_layer_statistics_of_hand_made_activations(model: LoadedModel) -> None:
    activations = {
        "classifier": torch.tensor([0.0, 2.0, -1.0, 0.0, 4.0]),
        "features.2": torch.tensor([[[0.0, 0.0], [0.0, 0.5]]]),
        "not-a-layer": torch.tensor([1.0]),
    }
    stats = layer_statistics(model, activations)
    assert stats == [
        LayerStats("features.2", "activation", (1, 2, 2), 0.0, 0.5, 0.125, 0.75),
        LayerStats("classifier", "linear", (5,), -1.0, 4.0, 1.0, 0.4),
    ]
    assert layer_statistics(model, {}) == []


def test_layer_statistics_match_numpy_on_real_activations(model: LoadedModel) -> None:
    result = analyze(model, tiny_inputs(1)[0], keep=every_layer(model))
    stats = layer_statistics(model, result.activations)
    assert [s.name for s in stats] == [layer.name for layer in model.layers]
    for summary, layer in zip(stats, model.layers, strict=True):
        values = result.activations[layer.name].double().numpy()
        assert summary.kind == layer.kind
        assert summary.shape == values.shape == layer.output_shape
        assert summary.min == values.min()
        assert summary.max == values.max()
        assert summary.mean == pytest.approx(values.mean(), rel=1e-6, abs=1e-7)
        assert summary.zero_fraction == np.count_nonzero(values == 0) / values.size
    relu = next(s for s in stats if s.name == "features.2")
    assert 0 < relu.zero_fraction < 1  # the seeded ReLU really zeroes some outputs


def test_analyze_batch_equals_single_analyses(model: LoadedModel) -> None:
    inputs = list(tiny_inputs(3))
    batched = analyze_batch(model, inputs, keep=every_layer(model))
    singles = [analyze(model, x, keep=every_layer(model)) for x in inputs]
    assert len(batched) == 3
    for together, alone, x in zip(batched, singles, inputs, strict=True):
        np.testing.assert_allclose(together.logits, alone.logits, rtol=1e-6, atol=1e-6)
        assert [p.index for p in together.predictions] == [p.index for p in alone.predictions]
        assert list(together.activations) == list(alone.activations)
        for name, tensor in together.activations.items():
            torch.testing.assert_close(tensor, alone.activations[name], rtol=1e-6, atol=1e-6)
        with torch.no_grad():
            direct = model.module(x.unsqueeze(0))[0].tolist()
        np.testing.assert_allclose(alone.logits, direct, rtol=0, atol=0)
        assert together.predictions == top_predictions(torch.tensor(together.logits), LABELS)
        assert_same_statistics(together.layers, layer_statistics(model, together.activations))


def test_batched_activations_are_independent_copies(model: LoadedModel) -> None:
    batched = analyze_batch(model, list(tiny_inputs(3)), keep=every_layer(model))
    pointers = set()
    for result in batched:
        for tensor in result.activations.values():
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
            pointers.add(tensor.data_ptr())
    assert len(pointers) == 3 * len(model.layers)


def test_single_analysis_has_per_image_shapes(model: LoadedModel) -> None:
    result = analyze(model, tiny_inputs(1)[0], top_k=3, keep=every_layer(model))
    assert len(result.predictions) == 3
    assert len(result.logits) == TINY_CLASSES
    for layer in model.layers:
        tensor = result.activations[layer.name]
        assert tuple(tensor.shape) == layer.output_shape
        assert tensor.is_contiguous()
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()


def test_recompute_activations_equals_the_analysis(model: LoadedModel) -> None:
    x = tiny_inputs(1, seed=4)[0]
    analysed = analyze(model, x, keep=every_layer(model)).activations
    every = recompute_activations(model, x, [layer.name for layer in model.layers])
    assert list(every) == list(analysed)
    for name, tensor in every.items():
        assert tensor.is_contiguous()
        torch.testing.assert_close(tensor, analysed[name], rtol=0, atol=0)
    early = recompute_activations(model, x, ["features.3"])
    assert list(early) == ["features.3"]
    torch.testing.assert_close(early["features.3"], analysed["features.3"], rtol=0, atol=0)


def test_every_bundled_model_runs_channels_last(registry: ModelRegistry) -> None:
    """Each spec asks for channels-last (measured faster, registry.MEMORY_FORMATS): weights and
    batches in it, and a contiguous batch gives the same logits to the bit."""
    for bundled in registry:
        assert bundled.memory_format == torch.channels_last, bundled.spec.id
        first_conv = next(m for m in bundled.module.modules() if isinstance(m, torch.nn.Conv2d))
        assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
        x = torch.randn((2, *bundled.input_shape), generator=torch.Generator().manual_seed(3))
        batch = bundled.batch(x)
        assert batch.is_contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            assert torch.equal(bundled.module(batch), bundled.module(x))


def test_channels_last_maps_come_back_contiguous_with_their_statistics(
    registry: ModelRegistry,
) -> None:
    """Lite0's maps are channels-last at the taps; kept and recomputed maps are contiguous
    (C, H, W), and the taps' statistics equal those of the maps (the sum to float32 rounding)."""
    lite0 = registry.get("efficientnet-lite0")
    assert lite0 is not None
    x = torch.randn(lite0.input_shape, generator=torch.Generator().manual_seed(5))
    names = ["_conv_stem", "_blocks.3._depthwise_conv", "_blocks.9", "_conv_head"]
    lean = analyze(lite0, x)
    full = analyze(lite0, x, keep=names)
    again = recompute_activations(lite0, x, names)
    for name in names:
        assert full.activations[name].is_contiguous(), name
        assert again[name].is_contiguous(), name
        assert tuple(again[name].shape) == lite0.layer_index[name].output_shape
        assert torch.equal(again[name], full.activations[name]), name
    tapped = [stats for stats in lean.layers if stats.name in names]
    assert_same_statistics(tapped, layer_statistics(lite0, full.activations))
    stem = full.activations["_conv_stem"].double().numpy()
    (stem_stats,) = [stats for stats in lean.layers if stats.name == "_conv_stem"]
    assert (stem_stats.min, stem_stats.max) == (stem.min(), stem.max())
    assert stem_stats.zero_fraction == np.count_nonzero(stem == 0) / stem.size
    assert stem_stats.mean == pytest.approx(stem.mean(), rel=1e-6)


def test_summaries_are_read_in_one_go_to_the_exact_numbers() -> None:
    """Rows of (min, max, sum, zeros) per image, in order, for several layers read together; a
    channels-last batch is summarized like its contiguous copy."""
    first = torch.tensor([[[0.0, 1.5], [-2.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]])
    second = torch.tensor([[0.25, 0.0, -0.5]])
    maps = torch.arange(-4.0, 4.0).reshape(1, 2, 2, 2)
    rows = read_summaries(
        [
            summarize(first),
            summarize(second),
            summarize(maps.contiguous(memory_format=torch.channels_last)),
        ]
    )
    assert rows == [
        [[-2.0, 1.5, -0.5, 2.0], [0.0, 3.0, 3.0, 3.0]],
        [[-0.5, 0.25, -0.25, 1.0]],
        [[-4.0, 3.0, -4.0, 1.0]],
    ]
    assert read_summaries([]) == []
