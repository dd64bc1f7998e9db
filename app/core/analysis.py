"""One forward with every layer captured → predictions and per-layer statistics.

Batched: several waiting requests for the same model share one forward (`analyze_batch`).
"""

import math
from dataclasses import dataclass

import torch

from app.core.capture import ActivationCapture, capture_layers
from app.core.registry import LoadedModel


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class LayerStats:
    """Summary of one layer's output for one image."""

    name: str
    kind: str
    shape: tuple[int, ...]
    min: float
    max: float
    mean: float
    zero_fraction: float


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one forward produced for one image."""

    logits: list[float]
    predictions: list[Prediction]
    layers: list[LayerStats]
    activations: dict[str, torch.Tensor]


def top_predictions(logits: torch.Tensor, labels: list[str], k: int = 5) -> list[Prediction]:
    """Top-k classes by softmax probability, descending."""
    probabilities = torch.softmax(logits.double(), dim=-1)
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [
        Prediction(index=int(i), label=labels[int(i)], probability=float(p))
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def summarize(outputs: torch.Tensor) -> torch.Tensor:
    """(B, ...) layer outputs → (B, 4): min, max, mean and number of zeros of each image's output.

    Whole-tensor reductions per image (much faster than reducing along a dim on CPU), three passes
    over the data and no temporary the size of the layer.
    """
    with torch.inference_mode():
        rows = [
            torch.stack(
                (*torch.aminmax(item), item.mean(), torch.count_nonzero(item).to(item.dtype))
            )
            for item in outputs
        ]
        summary = torch.stack(rows).cpu()
        summary[:, 3] = outputs[0].numel() - summary[:, 3]
    return summary


def _stats(
    model: LoadedModel, shapes: dict[str, tuple[int, ...]], rows: dict[str, list[float]]
) -> list[LayerStats]:
    names = [layer.name for layer in model.layers if layer.name in rows]
    return [
        LayerStats(
            name=name,
            kind=model.layer_index[name].kind,
            shape=shapes[name],
            min=rows[name][0],
            max=rows[name][1],
            mean=rows[name][2],
            zero_fraction=rows[name][3] / math.prod(shapes[name]),
        )
        for name in names
    ]


def layer_statistics(model: LoadedModel, activations: dict[str, torch.Tensor]) -> list[LayerStats]:
    """min/max/mean/fraction of zeros for each captured layer of one image, in execution order."""
    shapes = {name: tuple(tensor.shape) for name, tensor in activations.items()}
    rows = {
        name: summarize(tensor.unsqueeze(0))[0].tolist() for name, tensor in activations.items()
    }
    return _stats(model, shapes, rows)


def analyze_batch(
    model: LoadedModel, inputs: list[torch.Tensor], top_k: int = 5
) -> list[AnalysisResult]:
    """One forward over several preprocessed (C, H, W) inputs, results split per image."""
    batch = torch.stack(inputs).to(model.device)
    with torch.inference_mode(), ActivationCapture(model.program) as capture:
        logits = capture.run(batch)
    summaries = {name: summarize(output) for name, output in capture.activations.items()}
    if logits is None:
        raise RuntimeError("the forward pass stopped before the model's output")
    logits = logits.float().cpu()
    single = len(inputs) == 1
    results = []
    for i in range(len(inputs)):
        # One image keeps the batch storage as is; several get their own copies so each cached
        # analysis accounts for (and frees) exactly its own memory.
        activations = {
            name: (tensor[i] if single else tensor[i].clone()).cpu()
            for name, tensor in capture.activations.items()
        }
        shapes = {name: tuple(tensor.shape) for name, tensor in activations.items()}
        rows = {name: summary[i].tolist() for name, summary in summaries.items()}
        results.append(
            AnalysisResult(
                logits=logits[i].tolist(),
                predictions=top_predictions(logits[i], model.labels, top_k),
                layers=_stats(model, shapes, rows),
                activations=activations,
            )
        )
    return results


def analyze(model: LoadedModel, inputs: torch.Tensor, top_k: int = 5) -> AnalysisResult:
    """Analyze one preprocessed (C, H, W) input."""
    return analyze_batch(model, [inputs], top_k)[0]


def recompute_activations(
    model: LoadedModel, inputs: torch.Tensor, layer_names: list[str]
) -> dict[str, torch.Tensor]:
    """Re-run the forward only as far as the named layers (after the cache evicted them)."""
    batch = inputs.unsqueeze(0).to(model.device)
    captured = capture_layers(model.program, batch, layer_names)
    return {name: tensor[0].cpu() for name, tensor in captured.items()}
