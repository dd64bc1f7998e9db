"""Hooks for gradient methods: one layer's output, tapped for the backward pass, and removed again.

Every method here needs a gradient at one layer. ``LayerTap`` owns the one forward hook that gets
it (removed in ``finally``) and acts only on forwards run by the thread that created it: the same
model object serves other requests on other threads, and their forwards must not see this hook.
Parameters are never touched: gradients flow from the input, or from the tapped layer, alone.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn


class _StopForward(Exception):
    """Raised by the tap once the layer has run, so the rest of the network is skipped."""


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's first parameter (float32 for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None else torch.float32


@contextmanager
def gradients_enabled() -> Iterator[None]:
    """Autograd on, even when the caller runs under ``no_grad`` or ``inference_mode``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


class LayerTap:
    """Context manager that hooks one named layer for a gradient method.

    Modes:
        ``"leaf"``: the layer's output is replaced by a detached copy that requires grad, so a
            backward from the logits stops at the layer (Grad-CAM: nothing below it is
            differentiated, and no graph is recorded before it).
        ``"stop"``: the output is kept in the graph and the forward ends right after the layer
            (effective receptive field, feature visualization: only the layers up to it run).

    ``output`` holds the tapped tensor after ``run``: the layer's output, or with ``use_input``
    (``"stop"`` mode only) the tensor the layer received.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        mode: Literal["leaf", "stop"],
        *,
        use_input: bool = False,
    ) -> None:
        modules = dict(model.named_modules())
        if layer not in modules or not layer:
            raise KeyError(f"no such layer: {layer!r}")
        self.model = model
        self._module = modules[layer]
        self._mode = mode
        self._use_input = use_input and mode == "stop"
        self._thread = threading.get_ident()
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self.output: torch.Tensor | None = None

    def __enter__(self) -> "LayerTap":
        self._handle = self._module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(
        self, _module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> torch.Tensor | None:
        if threading.get_ident() != self._thread:
            return None
        if self._use_input:
            output = inputs[0]
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"layer output is a {type(output).__name__}, not a tensor")
        if self._mode == "leaf":
            self.output = output.detach().requires_grad_(True)
            return self.output.clone()  # an in-place op downstream must not touch the leaf
        self.output = output
        raise _StopForward

    def run(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Forward ``batch``; returns the model output (None in ``"stop"`` mode)."""
        if self._handle is None:
            raise RuntimeError("LayerTap.run() must be called inside the `with` block")
        try:
            result = self.model(batch)
        except _StopForward:
            return None
        if self.output is None:
            raise RuntimeError("the tapped layer did not run in the forward pass")
        return result

    def tapped(self) -> torch.Tensor:
        """The layer output recorded by the last ``run``."""
        if self.output is None:
            raise RuntimeError("the tapped layer did not run in the forward pass")
        return self.output


def forward_to_layer(
    model: nn.Module, layer: str, batch: torch.Tensor, *, use_input: bool = False
) -> torch.Tensor:
    """The layer's output (or input) for ``batch``, still in the graph; later layers never run."""
    with LayerTap(model, layer, "stop", use_input=use_input) as tap:
        tap.run(batch)
        return tap.tapped()


def class_index_of(logits: torch.Tensor, class_index: int | None) -> int:
    """``class_index`` checked against the logits, or the top prediction when it is None.

    Raises:
        ValueError: the index is not a class of this model.
    """
    classes = logits.shape[-1]
    if class_index is None:
        return int(logits.reshape(-1, classes)[0].argmax())
    if not 0 <= class_index < classes:
        raise ValueError(f"class index {class_index} is not in 0..{classes - 1}")
    return class_index
