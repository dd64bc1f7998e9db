"""Recompute only what a local change touches: the engine behind fast occlusion.

Covering a 32-pixel window changes, in the first layers, only the units whose receptive field
meets the window; everything else equals the clean forward. The forward is cut into a chain of
stages (``stage_graph``: each stage's output is the next one's only input, proven on the traced
graph), and each local stage runs on a crop of its input around the changed region; only the
units the crop computes exactly (their field inside the crop, or reaching past it only at the real
image border, where the padding is real) are kept. Once the changed region covers much of a map,
the full map is rebuilt and the remaining stages run on whole (batched) maps.

A stage counts as local when its input and output are (N, C, H, W) maps, its receptive field is
traced and neither spans the whole map nor is gated by it (squeeze-excitation, GroupNorm), and a
probe change near two corners and the centre, propagated on crops, equals the full stage forward
(this catches ops whose result depends on the map's size, such as an adaptive pool to 2×2).
Locality ends at the first stage that is not local. The result equals the full forward up to
float rounding; ``chain_of`` returns None for any model it cannot prove to be such a chain with a
local first stage, and callers then run full forwards.
"""

import math
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from app.core.attribution.hooks import model_device, model_dtype
from app.core.attribution.stage_graph import GraphStage, graph_stages
from app.core.receptive_field import ReceptiveField
from app.core.receptive_field.tracer import trace_program

Span = tuple[int, int]
"""Inclusive range of units along one axis."""
Region = tuple[Span, Span]
"""Rows and columns of a rectangle of units."""

CHANNELS_FIRST = (2, 3)
"""Where height and width sit in an (N, C, H, W) map, the only layout crops are cut from."""


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


def chain_of(model: nn.Module, input_shape: tuple[int, int, int]) -> list[Stage] | None:
    """The model as a chain of stages whose first one is local, or None (see the module doc).

    Besides the graph proof, one seeded probe image run through the stages must give exactly the
    model's own output. Cached per model.
    """
    cached = _chains.get(model)
    if cached is not None and cached[0] == input_shape:
        return cached[1]
    parts = graph_stages(model)
    stages = None if parts is None else _local_chain(model, parts, input_shape)
    _chains[model] = (input_shape, stages)
    return stages


def clean_maps(stages: list[Stage] | list[GraphStage], batch: torch.Tensor) -> list[torch.Tensor]:
    """The input, then every stage's output, for ``batch``.

    Each stage gets a copy of its input, so a stage that overwrites its input in place
    (``nn.ReLU(inplace=True)``, ``x += …``) leaves the kept map as it was.
    """
    maps = [batch]
    for stage in stages:
        maps.append(stage.module(maps[-1].clone()))
    return maps


def _local_chain(
    model: nn.Module, parts: list[GraphStage], input_shape: tuple[int, int, int]
) -> list[Stage] | None:
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn((1, *input_shape), generator=generator, dtype=model_dtype(model))
    probe = probe.to(model_device(model))
    with torch.inference_mode():
        maps = clean_maps(parts, probe)
        if not torch.equal(maps[-1], model(probe)):
            return None
    stages, local = [], True
    for index, part in enumerate(parts):
        received, produced = maps[index], maps[index + 1]
        stage = Stage(
            part.name, part.module, _local_field(part.module, received) if local else None
        )
        if stage.field is not None and not _crops_are_exact(stage, received, produced):
            stage = Stage(part.name, part.module, None)
        local = stage.field is not None
        stages.append(stage)
    return stages if stages[0].field is not None else None


def _local_field(module: nn.Module, received: torch.Tensor) -> ReceptiveField | None:
    """The field of a stage over its (N, C, H, W) input, when its output is such a map too and
    each unit sees only part of the input, ungated; else None.

    Traced on meta tensors without hooks: the stage's modules are the served model's, which other
    requests may be running meanwhile.
    """
    if received.ndim != 4:
        return None
    traces, _ = trace_program(
        lambda image, sink: sink(0, module(image)), tuple(received.shape[1:]), received.dtype
    )
    trace = traces.get(0)
    if trace is None or len(trace.shape) != 4 or trace.spatial_dims != CHANNELS_FIRST:
        return None
    field = trace.field.rf
    return None if field is None or field.is_global or field.gated else field


def _crops_are_exact(stage: Stage, clean_input: torch.Tensor, clean_output: torch.Tensor) -> bool:
    """A probe change near two corners and the centre, run on crops, equals the full forward."""
    channels, height, width = clean_input.shape[1:]
    generator = torch.Generator().manual_seed(1)
    changes: list[Change | None] = []
    for top, left in ((0, 0), (height // 2, width // 2), (height - 2, width - 2)):
        rows = (max(top, 0), min(max(top, 0) + 1, height - 1))
        cols = (max(left, 0), min(max(left, 0) + 1, width - 1))
        shape = (1, channels, rows[1] - rows[0] + 1, cols[1] - cols[0] + 1)
        values = torch.randn(shape, generator=generator, dtype=clean_input.dtype)
        changes.append(Change((rows, cols), values.to(clean_input.device)))
    out_hw = (clean_output.shape[2], clean_output.shape[3])
    try:
        with torch.inference_mode():
            results = propagate(stage, clean_input, out_hw, changes)
            full = stage.module(paste(clean_input, changes))
    except RuntimeError:  # e.g. a constant of the whole map's size meets a crop
        return False
    tolerance = {"rtol": 1e-4, "atol": 1e-5 * max(1.0, float(clean_output.abs().max()))}
    expected = paste(clean_output, results)
    return full.shape == expected.shape and torch.allclose(full, expected, **tolerance)


def paste(clean: torch.Tensor, changes: "list[Change | None]") -> torch.Tensor:
    """One copy of the (1, C, H, W) ``clean`` map per change, with that change written in."""
    batch = clean.expand(len(changes), -1, -1, -1).clone()
    for item, change in enumerate(changes):
        if change is not None:
            (top, bottom), (left, right) = change.region
            batch[item, :, top : bottom + 1, left : right + 1] = change.values[0]
    return batch


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
    stage: Stage, clean_input: torch.Tensor, out_hw: Span, changes: list[Change | None]
) -> list[Change | None]:
    """Run one stage on a crop around each change; the changes it causes, in the same order.

    ``clean_input`` is the stage's unchanged (1, C, H, W) input. None stands for no change: a
    change no output unit sees (the last row of an unpadded stride-2 conv) causes none. Crops of
    the same size (every window away from the border) run as one batch.
    """
    field = stage.field
    assert field is not None, "only local stages run on crops"
    plans: dict[int, tuple[Change, Region, Region]] = {}
    for item, change in enumerate(changes):
        if change is None:
            continue
        rows = affected(field, 0, change.region[0], out_hw[0])
        cols = affected(field, 1, change.region[1], out_hw[1])
        if rows is not None and cols is not None:
            crop = (
                crop_for(field, 0, rows, clean_input.shape[2]),
                crop_for(field, 1, cols, clean_input.shape[3]),
            )
            plans[item] = (change, (rows, cols), crop)
    groups: dict[tuple[int, int], list[int]] = {}
    for item, (_, _, ((top, bottom), (left, right))) in plans.items():
        groups.setdefault((bottom - top, right - left), []).append(item)
    results: list[Change | None] = [None] * len(changes)
    for members in groups.values():
        batch = []
        for item in members:
            change, _, ((top, bottom), (left, right)) = plans[item]
            crop = clean_input[:, :, top : bottom + 1, left : right + 1].clone()
            # Only the part of the change inside the crop: no wanted unit sees the rest (a row
            # between the taps of a strided conv, the last row an unpadded one never reaches).
            (r0, r1), (c0, c1) = change.region
            rows, cols = (max(r0, top), min(r1, bottom)), (max(c0, left), min(c1, right))
            crop[:, :, rows[0] - top : rows[1] - top + 1, cols[0] - left : cols[1] - left + 1] = (
                change.values[
                    :, :, rows[0] - r0 : rows[1] - r0 + 1, cols[0] - c0 : cols[1] - c0 + 1
                ]
            )
            batch.append(crop)
        outputs = stage.module(torch.cat(batch))
        for position, item in enumerate(members):
            _, (rows, cols), ((top, _), (left, _)) = plans[item]
            row0, col0 = rows[0] - top // field.jump[0], cols[0] - left // field.jump[1]
            values = outputs[
                position : position + 1,
                :,
                row0 : row0 + rows[1] - rows[0] + 1,
                col0 : col0 + cols[1] - cols[0] + 1,
            ]
            results[item] = Change((rows, cols), values)
    return results
