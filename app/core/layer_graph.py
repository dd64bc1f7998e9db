"""Which visible layer feeds each layer: what a unit-arithmetic view needs to redo a layer by hand.

One probe forward with a hook on every module records, by tensor identity, who produced each tensor.
A layer's input is then traced back through the modules the visualizer does not show: zero pads add
their padding (EfficientNet's TF-"SAME" pads before stride-2 convs), flatten/dropout/identity pass
the tensor through. The result names the visible layer (or ``"input"``, the normalized model input)
whose output the layer reads, plus any zero padding added on the way.
"""

from dataclasses import dataclass

import torch
from torch import nn

from app.core.layer_kinds import layer_kind

MODEL_INPUT = "input"
"""Source name of the normalized model input (what GET /analyses/{id}/input/channels/{c} serves)."""

_PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity)
_GROUPING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerInput:
    """Where a layer's input comes from.

    Attributes:
        source: the visible layer whose output feeds this layer, or ``MODEL_INPUT``.
        padding: zero padding (top, left, bottom, right) that hidden pad modules add in between.
    """

    source: str
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)


def _pad_amounts(module: nn.ZeroPad2d | nn.ConstantPad2d) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a 2-d pad module (torch stores left, right, top, bottom)."""
    left, right, top, bottom = module.padding
    return (top, left, bottom, right)


def _is_zero_pad(module: nn.Module) -> bool:
    if isinstance(module, nn.ZeroPad2d):
        return True
    return isinstance(module, nn.ConstantPad2d) and module.value == 0


def _add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def layer_inputs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, LayerInput | None]:
    """Input source of every visible layer, in execution order.

    A layer whose input is made by an operation outside any module (e.g. a functional add that is
    not itself a layer) maps to None: its input is not one layer's output. Constant pads count as
    zero pads only when their value is 0.
    """
    device = next(model.parameters()).device
    probe = torch.zeros((1, *input_shape), device=device)
    producers: dict[int, LayerInput] = {id(probe): LayerInput(MODEL_INPUT)}
    alive: list[torch.Tensor] = [probe]  # keeps every tensor alive so ids are never reused
    found: dict[str, LayerInput | None] = {}

    def hook(name: str, module: nn.Module):
        def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
            if not inputs or not isinstance(inputs[0], torch.Tensor):
                return
            source = producers.get(id(inputs[0]))
            if not isinstance(output, torch.Tensor):
                return
            alive.extend((inputs[0], output))
            if layer_kind(module) is not None and not isinstance(module, _GROUPING):
                found.setdefault(name, source)
                producers[id(output)] = LayerInput(name)
            elif source is not None and _is_zero_pad(module):
                producers[id(output)] = LayerInput(
                    source.source, _add(source.padding, _pad_amounts(module))
                )
            elif source is not None and isinstance(module, _PASS_THROUGH):
                producers[id(output)] = source

        return record

    handles = [
        module.register_forward_hook(hook(name, module))
        for name, module in model.named_modules()
        if name
    ]
    try:
        with torch.inference_mode():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
    return found
