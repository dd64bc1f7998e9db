"""One forward with every layer captured → predictions and per-layer statistics.

Batched: several waiting requests for the same model share one forward (`analyze_batch`).
"""

from dataclasses import dataclass

import torch

from app.core.capture import ActivationCapture
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


def layer_statistics(model: LoadedModel, activations: dict[str, torch.Tensor]) -> list[LayerStats]:
    """min/max/mean/fraction of zeros for each captured layer of one image, in execution order."""
    names = [layer.name for layer in model.layers if layer.name in activations]
    if not names:
        return []
    summaries = torch.stack(
        [
            torch.stack(
                (
                    *torch.aminmax(activations[name]),
                    activations[name].mean(),
                    (activations[name] == 0).sum().float(),  # exact: every layer has < 2**24 units
                )
            )
            for name in names
        ]
    ).tolist()
    return [
        LayerStats(
            name=name,
            kind=model.layer_index[name].kind,
            shape=tuple(activations[name].shape),
            min=lo,
            max=hi,
            mean=mean,
            zero_fraction=zeros / activations[name].numel(),
        )
        for name, (lo, hi, mean, zeros) in zip(names, summaries, strict=True)
    ]


def analyze_batch(
    model: LoadedModel, inputs: list[torch.Tensor], top_k: int = 5
) -> list[AnalysisResult]:
    """Run one forward over several preprocessed (C, H, W) inputs and split the results per image."""
    batch = torch.stack(inputs).to(model.device)
    with torch.inference_mode(), ActivationCapture(model.module) as capture:
        logits = capture.run(batch)
    assert logits is not None
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
        results.append(
            AnalysisResult(
                logits=logits[i].tolist(),
                predictions=top_predictions(logits[i], model.labels, top_k),
                layers=layer_statistics(model, activations),
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
    """Re-run the forward only as far as the named layers (used when the activation cache evicted them)."""
    batch = inputs.unsqueeze(0).to(model.device)
    with (
        torch.inference_mode(),
        ActivationCapture(model.module, layer_names, stop_early=True) as capture,
    ):
        capture.run(batch)
    return {name: tensor[0].cpu() for name, tensor in capture.activations.items()}
