"""Taps for gradient methods: one layer's output (or input), for the backward pass.

Every method here needs a gradient at one layer, module or functional (``F.relu``, a residual
add). ``LayerTap`` sets the sink of the model's layer program for the forward it runs, on its own
thread only: the same model object serves other requests on other threads, and their forwards
must not see this tap. Parameters are never touched: gradients flow from the input, or from the
tapped layer, alone.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from app.core.layer_program import LayerProgram, program_of


class _StopForward(Exception):
    """Raised by the tap once the layer has run, so the rest of the network is skipped."""


class LayerNotRunError(ValueError):
    """The layer exists, but this input's forward never reached it (a branch not taken)."""


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
    """Context manager that taps one named layer of a model's program for a gradient method.

    Modes:
        ``"leaf"``: the layer's output is replaced by a detached copy that requires grad, so a
            backward from the logits stops at the layer (Grad-CAM: nothing below it is
            differentiated, and no graph is recorded before it).
        ``"stop"``: the output is kept in the graph and the forward ends right after the layer
            (effective receptive field, feature visualization: only the layers up to it run).

    ``output`` holds the tapped tensor after ``run``: the layer's output, or with ``use_input``
    (``"stop"`` mode only) the tensor the layer received. ``channels_last`` tells whether it is
    laid out (N, H, W, C); ``tapped()`` always returns it channels-first.

    A program of module hooks (a model fx cannot trace) sees a module's input only after the
    module ran, when an in-place module (``nn.ReLU(inplace=True)``) has overwritten it; there the
    input is taken by a forward pre-hook instead, on this thread only.
    """

    def __init__(
        self,
        model: nn.Module | LayerProgram,
        layer: str,
        mode: Literal["leaf", "stop"],
        *,
        use_input: bool = False,
    ) -> None:
        self.program = model if isinstance(model, LayerProgram) else program_of(model)
        entry = self.program.by_name.get(layer)
        if entry is None:
            raise KeyError(f"no such layer: {layer!r}")
        self.layer = layer
        self._mode = mode
        self._point = entry.point
        self.channels_last = entry.point in self.program.channels_last
        self._input_module: nn.Module | None = None
        if use_input and mode == "stop":
            point = entry.input_point if entry.input_point is not None else entry.operands[0]
            if point is None:
                raise KeyError(f"layer {layer!r} has no single tensor input")
            self._point = point
            self.channels_last = point in self.program.channels_last
            if self.program.method == "hooks" and entry.module is not None:
                self._input_module = self.program.model.get_submodule(entry.module)
        self._active = False
        self.output: torch.Tensor | None = None

    def __enter__(self) -> "LayerTap":
        self._active = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._active = False

    def _sink(self, point: int, value: torch.Tensor) -> torch.Tensor | None:
        if point != self._point or self.output is not None:
            return None
        if self._mode == "leaf":
            self.output = value.detach().requires_grad_(True)
            return self.output.clone()  # an in-place op downstream must not touch the leaf
        self.output = value
        raise _StopForward

    def run(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Forward ``batch``; returns the model output (None in ``"stop"`` mode).

        Raises:
            LayerNotRunError: the forward never reached the layer.
        """
        if not self._active:
            raise RuntimeError("LayerTap.run() must be called inside the `with` block")
        self.output = None
        handle = None
        if self._input_module is not None:
            thread = threading.get_ident()

            def before(_module: nn.Module, inputs: tuple[object, ...]) -> None:
                if threading.get_ident() == thread and isinstance(inputs[0], torch.Tensor):
                    self._sink(self._point, inputs[0])

            handle = self._input_module.register_forward_pre_hook(before)
        try:
            result = self.program.run(batch, self._sink)
        except _StopForward:
            return None
        finally:
            if handle is not None:
                handle.remove()
        if self.output is None:
            raise LayerNotRunError(
                f"layer {self.layer!r} did not run for this input: the forward took another branch"
            )
        return result

    def tapped(self) -> torch.Tensor:
        """The layer output recorded by the last ``run``, channels-first."""
        if self.output is None:
            raise RuntimeError("the tapped layer did not run in the forward pass")
        return self.program.channels_first(self._point, self.output)


def forward_to_layer(
    model: nn.Module | LayerProgram, layer: str, batch: torch.Tensor, *, use_input: bool = False
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
