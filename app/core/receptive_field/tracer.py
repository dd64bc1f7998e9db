"""Receptive field of every module of a real model, following its actual graph.

Module order is not enough (residual adds, inception branches, ``x.mean((2, 3))`` in a forward),
so ``compute_receptive_fields`` runs one forward on ``meta`` tensors (shapes only, no arithmetic:
VGG costs as little as LeNet) under a ``TorchFunctionMode``. The mode attaches a ``Trace`` to
every tensor derived from the image and derives each op's output trace from its inputs' (see
``ops``); forward hooks read the trace of every module's output.

Conventions: BatchNorm counts as per-unit (as in eval mode, even when training); a flattened
tensor keeps the field of the position each element came from, and a linear layer over it sees
the whole image; a module called twice reports its first call.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from app.core.receptive_field.geometry import INPUT_RECEPTIVE_FIELD, ReceptiveField
from app.core.receptive_field.ops import VALUE_INDEPENDENT, OpCall, Trace, derive_trace, op_name


@dataclass(frozen=True)
class LayerReceptiveField:
    """One module's result: a receptive field, or a diagnostic saying why there is none."""

    name: str
    rf: ReceptiveField | None
    diagnostic: str | None = None


def _tensors_in(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, list | tuple | dict):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _tensors_in(item)


def _on_meta(value: Any) -> Any:
    """``value`` with every tensor replaced by a meta tensor (meta ones are kept, not copied).

    Copying parameters and buffers this way also means an in-place op in the model's forward
    (BatchNorm's running statistics in train mode) changes a throwaway copy, never the model.
    """
    if isinstance(value, Tensor):
        return value if value.is_meta else value.to("meta")
    if isinstance(value, dict):
        return {key: _on_meta(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_on_meta(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value  # keeps torch.Size and named tuples as they are
        return items if isinstance(value, list) else tuple(items)
    return value


class _ReceptiveFieldMode(TorchFunctionMode):
    """Runs every torch call on meta tensors and derives its output's trace from its inputs'."""

    def __init__(self, image_hw: tuple[int, int]) -> None:
        super().__init__()
        self.image_hw = image_hw
        self._traces: dict[int, tuple[Tensor, Trace]] = {}  # by id; keeps the tensors alive

    def tag(self, tensor: Tensor, trace: Trace) -> None:
        self._traces[id(tensor)] = (tensor, trace)

    def trace_of(self, tensor: Tensor) -> Trace | None:
        entry = self._traces.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        args, kwargs = _on_meta(args), _on_meta(kwargs or {})
        inputs = [(t, self.trace_of(t)) for t in _tensors_in((args, kwargs))]
        traced = [(t, trace) for t, trace in inputs if trace is not None]
        output = func(*args, **kwargs)
        name = op_name(func)
        outputs = [args[0]] if name == "setitem" else list(_tensors_in(output))  # in place
        if traced and outputs and name not in VALUE_INDEPENDENT:
            trace = derive_trace(OpCall(name, args, kwargs, traced, outputs, self.image_hw))
            for tensor in outputs:
                self.tag(tensor, trace)
        return output


def _record_output(
    mode: _ReceptiveFieldMode,
    found: dict[str, LayerReceptiveField],
    name: str,
    _module: nn.Module,
    _inputs: Any,
    output: Any,
) -> None:
    """Forward hook; a module called twice keeps its first call, as ``ActivationCapture`` does."""
    if name in found:
        return
    tensor = next(_tensors_in(output), None)
    trace = None if tensor is None else mode.trace_of(tensor)
    if trace is None:
        found[name] = LayerReceptiveField(name, None, "output does not depend on the input image")
    else:
        found[name] = LayerReceptiveField(name, trace.rf, trace.diagnostic)


def compute_receptive_fields(
    model: nn.Module, input_shape: tuple[int, int, int]
) -> dict[str, LayerReceptiveField]:
    """Receptive field of every module's output (leaves and containers), by dotted name.

    Args:
        model: any ``nn.Module`` taking one (N, C, H, W) batch. It is left exactly as it was:
            hooks removed, no parameter, buffer or train/eval flag changed.
        input_shape: (channels, height, width) of one image.

    Returns:
        One entry per name of ``model.named_modules()`` (the root is ``""``). Modules that did
        not run, or whose output no (size, jump, start) describes, carry a ``diagnostic``
        instead of a field; nothing raises.
    """
    channels, height, width = input_shape
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    mode = _ReceptiveFieldMode((height, width))
    found: dict[str, LayerReceptiveField] = {}
    modules = dict(model.named_modules())
    buffers = [(m, n, b) for m in modules.values() for n, b in m.named_buffers(recurse=False)]
    handles = []
    missing = "not run in the forward pass"
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(partial(_record_output, mode, found, name)))
        image = torch.zeros((1, channels, height, width), dtype=dtype, device="meta")
        mode.tag(image, Trace(INPUT_RECEPTIVE_FIELD, (2, 3)))
        with torch.no_grad(), mode:
            model(image)
    except Exception as exc:  # e.g. Python control flow on tensor values, impossible on meta
        missing = f"forward pass stopped before this layer: {type(exc).__name__}: {exc}"
    finally:
        for handle in handles:
            handle.remove()
        for module, buffer_name, buffer in buffers:  # undo any `self.buffer = ...` in forward
            if getattr(module, buffer_name) is not buffer:
                setattr(module, buffer_name, buffer)
    return {name: found.get(name, LayerReceptiveField(name, None, missing)) for name in modules}


@dataclass(frozen=True)
class PointTrace:
    """What the meta forward learned about one program point: its shape and its field."""

    shape: tuple[int, ...]
    field: LayerReceptiveField
    spatial_dims: tuple[int, int] | None


def trace_program(
    run: Callable[[Tensor, Callable[[int, Tensor], None]], Any],
    input_shape: tuple[int, int, int],
    dtype: torch.dtype = torch.float32,
) -> tuple[dict[int, PointTrace], str | None]:
    """Shapes and receptive fields at every point of a layer program, from one meta forward.

    ``run(image, sink)`` runs the program with ``sink`` called at each point. Returns the traces
    by point and, when the forward stopped early, why (later points are then missing).
    """
    channels, height, width = input_shape
    mode = _ReceptiveFieldMode((height, width))
    found: dict[int, PointTrace] = {}

    def sink(point: int, value: Tensor) -> None:
        if point in found:
            return
        trace = mode.trace_of(value)
        if trace is None:
            field = LayerReceptiveField("", None, "output does not depend on the input image")
        else:
            field = LayerReceptiveField("", trace.rf, trace.diagnostic)
        dims = trace.spatial_dims if trace is not None else None
        found[point] = PointTrace(tuple(value.shape), field, dims)

    image = torch.zeros((1, channels, height, width), dtype=dtype, device="meta")
    mode.tag(image, Trace(INPUT_RECEPTIVE_FIELD, (2, 3)))
    try:
        with torch.no_grad(), mode:
            run(image, sink)
    except Exception as exc:  # e.g. Python control flow on tensor values, impossible on meta
        return found, f"{type(exc).__name__}: {exc}".splitlines()[0]
    return found, None
