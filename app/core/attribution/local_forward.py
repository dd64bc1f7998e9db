"""Recompute only what a local change touches: the engine behind fast occlusion.

Covering a 32-pixel window changes, in the first layers, only the units whose receptive field
meets the window; everything else equals the clean forward. When a network is a plain chain of
stages (each stage's output is the next one's only input, as in LeNet or EfficientNet at the
block level), each stage can be run on a crop of its input around the changed region, and only
the units the crop computes exactly (their field inside the crop, or reaching past it only at
the real image border, where the padding is real) are kept. Once the changed region covers much
of a map, the full map is rebuilt and the remaining stages run on whole (batched) maps.

The result equals the full forward up to float rounding; ``chain_of`` returns None for any
model it cannot prove to be such a chain, and callers then run the full forward.
"""

import math
import threading
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from app.core.attribution.hooks import model_device, model_dtype
from app.core.receptive_field import ReceptiveField, compute_receptive_fields

Span = tuple[int, int]
"""Inclusive range of units along one axis."""
Region = tuple[Span, Span]
"""Rows and columns of a rectangle of units."""


@dataclass(frozen=True)
class Stage:
    """One link of the chain; ``field`` is its receptive field relative to its own input map,
    or None once the chain stops being local (a vector, or units that see everything)."""

    name: str
    module: nn.Module
    field: ReceptiveField | None


_chains: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], list[Stage] | None]]" = (
    weakref.WeakKeyDictionary()
)


def _candidates(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Top-level children in registration order, with ``nn.Sequential`` containers opened."""
    found = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            found += _candidates(child, f"{prefix}{name}.")
        else:
            found.append((f"{prefix}{name}", child))
    return found


def chain_of(model: nn.Module, input_shape: tuple[int, int, int]) -> list[Stage] | None:
    """The model as a chain of stages, or None when its forward is not exactly that chain.

    Proven with one probe forward: every candidate runs once, in order, each taking the previous
    one's output tensor itself, and the last output is what the model returns. Cached per model.
    """
    cached = _chains.get(model)
    if cached is not None and cached[0] == input_shape:
        return cached[1]
    stages = _probe_chain(model, input_shape)
    _chains[model] = (input_shape, stages)
    return stages


def _probe_chain(model: nn.Module, input_shape: tuple[int, int, int]) -> list[Stage] | None:
    candidates = _candidates(model)
    calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    thread = threading.get_ident()

    def record(name: str, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if threading.get_ident() == thread:  # other requests may be using the model meanwhile
            calls.append((name, inputs[0], output))

    handles = [
        module.register_forward_hook(
            lambda _module, inputs, output, name=name: record(name, inputs, output)
        )
        for name, module in candidates
    ]
    probe = torch.zeros((1, *input_shape), device=model_device(model), dtype=model_dtype(model))
    try:
        with torch.inference_mode():
            result = model(probe)
    finally:
        for handle in handles:
            handle.remove()
    if [name for name, _, _ in calls] != [name for name, _ in candidates]:
        return None
    previous = probe
    for _, received, produced in calls:
        if received is not previous:
            return None
        previous = produced
    if previous is not result:
        return None
    stages, local = [], True
    for (name, module), (_, received, produced) in zip(candidates, calls, strict=True):
        field = None
        if local and received.ndim == 4 and produced.ndim == 4:
            field = compute_receptive_fields(module, tuple(received.shape[1:]))[""].rf
        local = field is not None and not field.is_global
        stages.append(Stage(name, module, field if local else None))
    return stages


def affected(field: ReceptiveField, axis: int, changed: Span, length: int) -> Span | None:
    """Output units along ``axis`` whose field meets the ``changed`` input units."""
    half = (field.size[axis] - 1) / 2
    start, jump = field.start[axis], field.jump[axis]
    low = max(0, math.ceil((changed[0] - half - start) / jump))
    high = min(length - 1, math.floor((changed[1] + half - start) / jump))
    return (low, high) if low <= high else None


def crop_for(field: ReceptiveField, axis: int, outputs: Span, length: int) -> Span:
    """Input units a crop needs so its outputs ``outputs`` are exact.

    The crop starts on a multiple of the stride, so crop output k is output k + start / stride
    of the whole map; it ends where the last wanted unit's field ends (or at the map's end).
    """
    half = (field.size[axis] - 1) / 2
    start, jump = field.start[axis], field.jump[axis]
    first = max(0, round(start - half) + outputs[0] * jump)
    last = min(length - 1, round(start + half) + outputs[1] * jump)
    return (first // jump) * jump, last


def local_shares(stages: list[Stage], maps: list[torch.Tensor], region: Region) -> list[float]:
    """For one changed input region, the share of each local stage's output that changes."""
    shares = []
    for index, stage in enumerate(stages):
        if stage.field is None:
            break
        out = maps[index + 1].shape[2:]
        spans = [affected(stage.field, axis, region[axis], out[axis]) for axis in (0, 1)]
        if spans[0] is None or spans[1] is None:
            break
        region = (spans[0], spans[1])
        shares.append(
            (spans[0][1] - spans[0][0] + 1) * (spans[1][1] - spans[1][0] + 1) / (out[0] * out[1])
        )
    return shares


@dataclass(frozen=True)
class Change:
    """A changed rectangle of one map: ``values`` (1, C, h, w) replace ``region``'s units."""

    region: Region
    values: torch.Tensor


def propagate(
    stage: Stage, clean_input: torch.Tensor, out_hw: Span, changes: list[Change]
) -> list[Change]:
    """Run one stage on a crop around each change; the changes it causes, in the same order.

    ``clean_input`` is the stage's unchanged (1, C, H, W) input. Crops of the same size (every
    window away from the border) run as one batch.
    """
    field = stage.field
    assert field is not None, "only local stages run on crops"
    plans = []
    for change in changes:
        spans = [affected(field, axis, change.region[axis], out_hw[axis]) for axis in (0, 1)]
        assert spans[0] is not None and spans[1] is not None, "a change always reaches an output"
        crops = [crop_for(field, axis, spans[axis], clean_input.shape[2 + axis]) for axis in (0, 1)]
        plans.append((spans, crops))
    groups: dict[tuple[int, int], list[int]] = {}
    for item, (_, ((top, bottom), (left, right))) in enumerate(plans):
        groups.setdefault((bottom - top, right - left), []).append(item)
    results: list[Change | None] = [None] * len(changes)
    for members in groups.values():
        batch = []
        for item in members:
            (top, bottom), (left, right) = plans[item][1]
            crop = clean_input[:, :, top : bottom + 1, left : right + 1].clone()
            (r0, r1), (c0, c1) = changes[item].region
            crop[:, :, r0 - top : r1 - top + 1, c0 - left : c1 - left + 1] = changes[item].values
            batch.append(crop)
        outputs = stage.module(torch.cat(batch))
        for position, item in enumerate(members):
            (rows, cols), ((top, _), (left, _)) = plans[item]
            row0, col0 = rows[0] - top // field.jump[0], cols[0] - left // field.jump[1]
            values = outputs[
                position : position + 1,
                :,
                row0 : row0 + rows[1] - rows[0] + 1,
                col0 : col0 + cols[1] - cols[0] + 1,
            ]
            results[item] = Change((rows, cols), values)
    return [change for change in results if change is not None]
