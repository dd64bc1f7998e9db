"""One forward with every layer captured → predictions and per-layer statistics.

Batched: several waiting requests for the same model share one forward (`analyze_batch`).
"""

import math
import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from app.core.capture import capture_layers, capture_resuming
from app.core.layer_program import Frontier, LayerProgram
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


Summary = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | float]]
"""Per image of a layer's batch: min, max, sum and number of zeros, the reductions' 0-d results
not yet read (`read_summaries` reads them); a zero count numpy made is already a number."""


def summarize(outputs: torch.Tensor) -> Summary:
    """(B, ...) layer outputs → min, max, sum and number of zeros of each image.

    Measured at the taps of EfficientNet-Lite0 (one thread, ÷ the forward alone): aminmax 1.09×,
    + float32 sum 1.11×, + zeros counted by numpy 1.29× (torch.count_nonzero: 1.87×).

    Whole-tensor reductions per image (much faster than reducing along a dim on CPU). On the
    CPU zeros are counted by numpy (a third of ``torch.count_nonzero``'s time); nothing else is
    read here, so a device is not synchronized per layer and the CPU pays no ``.item()`` per
    number. A channels-last (B, C, H, W) value is read as the (B, H, W, C) tensor it is in
    memory (contiguous per image): Lite0's analysis forward on a channels-last model cost 1.41× a
    bare contiguous forward that way against 2.17× reading the strided (C, H, W) views.
    """
    if (
        outputs.dim() == 4
        and not outputs.is_contiguous()
        and outputs.is_contiguous(memory_format=torch.channels_last)
    ):
        outputs = outputs.permute(0, 2, 3, 1)
    rows: Summary = []
    for item in outputs.unbind():
        low, high = torch.aminmax(item)
        total = item.sum()  # float32 cascade sum: a float64 one cost 0.5 of a forward more
        if item.is_cpu:
            zeros: torch.Tensor | float = float(np.count_nonzero(item.numpy() == 0))
        else:
            zeros = (item.numel() - torch.count_nonzero(item)).to(torch.float64)
        rows.append((low, high, total, zeros))
    return rows


def read_summaries(summaries: Sequence[Summary]) -> list[list[list[float]]]:
    """Every summary's (min, max, sum, zeros) rows as floats, their tensors read in one go.

    One stack and one copy to the host for a whole forward instead of three ``.item()`` per image
    and layer: measured on 143 tiny CPU taps, 1.4 ms against 2.8 ms.
    """
    tensors = [
        value
        for rows in summaries
        for row in rows
        for value in row
        if isinstance(value, torch.Tensor)
    ]
    numbers = iter(torch.stack(tensors).cpu().tolist() if tensors else ())
    return [
        [
            [next(numbers) if isinstance(value, torch.Tensor) else value for value in row]
            for row in rows
        ]
        for rows in summaries
    ]


def _summarize_off_thread(outputs: torch.Tensor) -> Summary:
    with torch.inference_mode():
        return summarize(outputs)


WAITING_BYTES = 0
"""Layer outputs one forward may leave waiting for a statistics thread by default: none, every
layer is summarized on the forward's own thread. Measured side by side (bench/analyze.py, Lite0,
one torch thread, 2 cores): HTTP analyze 2.26× and 2.37× a bare forward inline against 2.53×
and 2.56× with 32 MiB allowed to wait (the upload's client, decode worker and event loop use
the other core); in-process alone on a quiet box the threads once gave 1.33× against 1.65×.
Lite0's layers at 224² total 79 MB; its largest single output is 1.6 MB."""

_STATISTICS_THREADS = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="layer-statistics"
)
"""Where CPU layers are summarized while the forward runs on, when ``waiting_bytes`` allows:
the reductions release the GIL, so on a machine with cores to spare a forward on one torch
thread is not kept waiting by them (no thread starts until the first value is handed over)."""


class _StatisticsSink:
    """Sink that summarizes each visible layer's output as the forward produces it.

    The forward summarizes each value itself, while it is still warm in its cache, unless
    ``waiting_bytes`` lets CPU values wait for `_STATISTICS_THREADS` (at most that many bytes at
    once): then a value a later in-place op overwrites is copied first (the program knows which),
    every other one is read where it lies. Nothing layer-sized is kept (except the layers named
    in ``keep``): a layer's maps are recomputed from the analysis's stored input when somebody
    opens it.
    """

    def __init__(self, program: LayerProgram, keep: set[str], waiting_bytes: int) -> None:
        self.program = program
        self.wanted = {layer.point for layer in program.layers}
        self.summaries: dict[int, Future[Summary] | Summary] = {}
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.keep = {program.by_name[name].point for name in keep}
        self.kept: dict[int, torch.Tensor] = {}
        self.waiting_bytes = waiting_bytes
        self._waiting: deque[tuple[Future[Summary], int]] = deque()
        self._waiting_total = 0

    def __call__(self, point: int, value: torch.Tensor) -> None:
        if point not in self.wanted or point in self.summaries:
            return
        self.summaries[point] = self._summary(point, value)
        self.shapes[point] = self.program.shown_shape(point, tuple(value.shape[1:]))
        if point in self.keep:
            self.kept[point] = self.program.channels_first(point, value.detach().clone())

    def _summary(self, point: int, value: torch.Tensor) -> Future[Summary] | Summary:
        if not value.is_cpu:
            return summarize(value)
        while self._waiting and self._waiting[0][0].done():
            self._waiting_total -= self._waiting.popleft()[1]
        size = value.numel() * value.element_size()
        if self._waiting_total + size > self.waiting_bytes:
            return summarize(value)
        owned = value.detach().clone() if self.program.points[point].overwritten else value
        future = _STATISTICS_THREADS.submit(_summarize_off_thread, owned)
        self._waiting.append((future, size))
        self._waiting_total += size
        return future

    def rows(self) -> dict[int, list[list[float]]]:
        """Every point's summary rows (waiting for those still being computed)."""
        done = [
            summary.result() if isinstance(summary, Future) else summary
            for summary in self.summaries.values()
        ]
        return dict(zip(self.summaries, read_summaries(done), strict=True))


def _layer_stats(name: str, kind: str, shape: tuple[int, ...], row: list[float]) -> LayerStats:
    """One ``summarize`` row (min, max, sum, zeros) of one image as the layer's statistics."""
    low, high, total, zeros = row
    count = math.prod(shape)
    return LayerStats(name, kind, shape, low, high, total / count, zeros / count)


def _stats(
    model: LoadedModel, sink: _StatisticsSink, rows: dict[int, list[list[float]]], image: int
) -> list[LayerStats]:
    found = []
    for layer in model.layers:
        point = model.program.by_name[layer.name].point
        if point in rows:
            found.append(
                _layer_stats(layer.name, layer.kind, sink.shapes[point], rows[point][image])
            )
    return found


def analyze_batch(
    model: LoadedModel,
    inputs: list[torch.Tensor],
    top_k: int = 5,
    keep: Iterable[str] = (),
    waiting_bytes: int = WAITING_BYTES,
) -> list[AnalysisResult]:
    """One forward over several preprocessed (C, H, W) inputs, results split per image.

    Each layer is summarized as it runs (``waiting_bytes``: see `_StatisticsSink`); only the
    layers named in ``keep`` keep their maps.
    """
    batch = model.batch(torch.stack(inputs))
    sink = _StatisticsSink(model.program, set(keep), waiting_bytes)
    with torch.inference_mode():
        logits = model.program.run(batch, sink)
        rows = sink.rows()
    logits = logits.float().cpu()
    point_of = {name: model.program.by_name[name].point for name in keep}
    return [
        AnalysisResult(
            logits=logits[i].tolist(),
            predictions=top_predictions(logits[i], model.labels, top_k),
            layers=_stats(model, sink, rows, i),
            activations={
                name: sink.kept[point][i].clone(memory_format=torch.contiguous_format).cpu()
                for name, point in point_of.items()
            },
        )
        for i in range(len(inputs))
    ]


def analyze(
    model: LoadedModel, inputs: torch.Tensor, top_k: int = 5, keep: Iterable[str] = ()
) -> AnalysisResult:
    """Analyze one preprocessed (C, H, W) input (keeping the maps of the layers in ``keep``)."""
    return analyze_batch(model, [inputs], top_k, keep)[0]


def layer_statistics(model: LoadedModel, activations: dict[str, torch.Tensor]) -> list[LayerStats]:
    """min/max/mean/fraction of zeros of given (C, H, W) maps, in the model's layer order."""
    return [
        _layer_stats(
            layer.name,
            layer.kind,
            tuple(activations[layer.name].shape),
            read_summaries([summarize(activations[layer.name].unsqueeze(0))])[0][0],
        )
        for layer in model.layers
        if layer.name in activations
    ]


def recompute_activations(
    model: LoadedModel, inputs: torch.Tensor, layer_names: list[str]
) -> dict[str, torch.Tensor]:
    """Re-run the forward only as far as the named layers (after the cache evicted them).

    The maps come back contiguous (C, H, W) whatever the model's memory format.
    """
    captured = capture_layers(model.program, model.batch(inputs.unsqueeze(0)), layer_names)
    return {name: tensor[0].cpu().contiguous() for name, tensor in captured.items()}


def resume_activations(
    model: LoadedModel, inputs: torch.Tensor, layer_names: list[str], starts: Sequence[Frontier]
) -> tuple[dict[str, torch.Tensor], Frontier | None]:
    """`recompute_activations` begun at the deepest of ``starts`` (where earlier ones for the
    same input stopped) that comes before every named layer; also returns where this one stopped.

    A student opening ten layers of Lite0 in order costs 95 ms of forwards instead of 401 ms
    (each from the input), with every map the same to the bit.
    """
    batch = model.batch(inputs.unsqueeze(0))
    captured, stopped = capture_resuming(model.program, batch, layer_names, starts)
    return {name: tensor[0].cpu().contiguous() for name, tensor in captured.items()}, stopped
