"""ActivationCapture: one forward pass records every chosen layer's output.

The capture object owns its hooks and always removes them (in `finally`), so a model is never left
instrumented, even when the forward raises. Outputs are detached, never copied: the architectures we
visualize have no in-place ops, so the tensors a hook sees are the ones that stay valid. Hooks act
only on forwards run by the thread that entered the capture: the server runs several forwards of
one model object at once, and each capture must see its own forward alone.
"""

import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Self

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

# Container classes that only group layers; anything else with children is a "block" (residual unit, …).
_GROUPING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# Leaves that change nothing a student would want to see (identity in eval, or a reshape).
_SKIPPED = (nn.Dropout, nn.Identity, nn.Flatten, nn.ZeroPad2d, nn.ConstantPad2d)

_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.ELU,
    nn.Hardswish,
)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def layer_kind(module: nn.Module) -> str | None:
    """The visualizer's name for a module's kind, or None when it is not shown as a layer."""
    if isinstance(module, nn.Conv2d):
        groups = module.groups
        return "depthwise_conv" if groups > 1 and groups == module.in_channels else "conv"
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return "batchnorm"
    if isinstance(module, _ACTIVATIONS):
        return "activation"
    if isinstance(module, _POOLS):
        return "pool"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _SKIPPED + _GROUPING):
        return None
    if any(True for _ in module.children()):
        return "block"
    return None


def visible_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every module shown as a layer, by dotted name (the root model itself excluded)."""
    return {
        name: module
        for name, module in model.named_modules()
        if name and layer_kind(module) is not None
    }


class _StopForward(Exception):
    """Raised by a hook to end the forward once the last wanted layer has run."""


class ActivationCapture:
    """Context manager that records detached outputs of the named modules.

    Args:
        model: the network; only hooks are added, and removed again on exit.
        layer_names: dotted names to record (default: every visible layer).
        stop_early: once every named layer has run, stop the forward (saves the rest of the
            network when only early layers are wanted); `run` then returns None.

    Example:
        >>> with ActivationCapture(model) as capture:
        ...     logits = capture.run(batch)
        >>> capture.activations["conv1"].shape
    """

    def __init__(
        self,
        model: nn.Module,
        layer_names: Iterable[str] | None = None,
        *,
        stop_early: bool = False,
    ) -> None:
        self.model = model
        modules = dict(model.named_modules())
        names = list(visible_layers(model)) if layer_names is None else list(layer_names)
        unknown = [name for name in names if name not in modules]
        if unknown:
            raise KeyError(f"no such layer(s): {', '.join(unknown)}")
        self._targets = {name: modules[name] for name in names}
        self._stop_early = stop_early
        self._handles: list[RemovableHandle] = []
        self._entered = False
        self._thread: int | None = None
        self.activations: dict[str, torch.Tensor] = {}
        self.order: list[str] = []

    def __enter__(self) -> Self:
        self._thread = threading.get_ident()
        try:
            for name, module in self._targets.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self._remove()
            raise
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._entered = False

    def _hook(self, name: str):
        def record(
            _module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> None:
            if threading.get_ident() != self._thread:
                return
            if name not in self.activations:
                self.activations[name] = output.detach()
                self.order.append(name)
            if self._stop_early and len(self.activations) == len(self._targets):
                raise _StopForward

        return record

    def run(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Forward `batch` under the hooks; returns the model output, or None if stopped early."""
        if not self._entered:
            raise RuntimeError("ActivationCapture.run() must be called inside the `with` block")
        if threading.get_ident() != self._thread:
            raise RuntimeError("ActivationCapture.run() must run on the thread that entered it")
        try:
            return self.model(batch)
        except _StopForward:
            return None
