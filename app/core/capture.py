"""ActivationCapture: one forward pass records the chosen layers' outputs (and real inputs).

A captured value is what the layer produced when it ran: the program (``layer_program``) hands
each value to the capture as soon as it exists, and the capture copies exactly the values that a
later in-place op of the model (``ReLU(inplace=True)``, ``out += identity``) would overwrite; the
rest are kept as they are, without a copy. Channels-last values (a ConvNeXt block's
``permute → LayerNorm → Linear``) are stored channels-first, like every other map. Only the
thread that runs the capture is seen: the server runs several forwards of one model at once.
"""

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from app.core.layer_program import Frontier, LayerProgram, StopForward


class ActivationCapture:
    """Records detached outputs of the named layers during ``run``.

    Args:
        program: the model's layer program.
        layer_names: layers to record (default: every visible layer).
        inputs_of: layers whose real input (the tensor the module received, after any padding
            module or ``F.pad`` before it) to record as well, in ``inputs``.
        stop_early: once everything wanted was recorded, stop the forward (saves the rest of
            the network when only early layers are wanted); ``run`` then returns None.

    Example:
        >>> capture = ActivationCapture(program)
        >>> logits = capture.run(batch)
        >>> capture.activations["conv1"].shape
    """

    def __init__(
        self,
        program: LayerProgram,
        layer_names: Iterable[str] | None = None,
        *,
        inputs_of: Iterable[str] = (),
        stop_early: bool = False,
    ) -> None:
        self.program = program
        names = (
            [layer.name for layer in program.layers] if layer_names is None else list(layer_names)
        )
        unknown = [name for name in [*names, *inputs_of] if name not in program.by_name]
        if unknown:
            raise KeyError(f"no such layer(s): {', '.join(unknown)}")
        self._outputs: dict[int, list[str]] = {}
        for name in names:
            self._outputs.setdefault(program.by_name[name].point, []).append(name)
        self._inputs: dict[int, list[str]] = {}
        for name in inputs_of:
            point = program.by_name[name].input_point
            if point is None:
                raise KeyError(f"layer {name!r} has no single tensor input")
            self._inputs.setdefault(point, []).append(name)
        self._wanted = len(self._outputs.keys() | self._inputs.keys())
        self._stop_early = stop_early
        self._seen: set[int] = set()
        self.activations: dict[str, Tensor] = {}
        self.inputs: dict[str, Tensor] = {}
        self.order: list[str] = []

    def _keep(self, point: int, value: Tensor) -> Tensor:
        value = value.detach()
        return value.clone() if self.program.points[point].overwritten else value

    def _sink(self, point: int, value: Tensor) -> None:
        if point in self._seen:
            return
        outputs, inputs = self._outputs.get(point), self._inputs.get(point)
        if outputs is None and inputs is None:
            return
        self._seen.add(point)
        kept = self._keep(point, value)
        shown = self.program.channels_first(point, kept)
        for name in outputs or ():
            self.activations[name] = shown
            self.order.append(name)
        for name in inputs or ():
            self.inputs[name] = kept
        if self._stop_early and len(self._seen) == self._wanted:
            raise StopForward

    def run(self, batch: Tensor) -> Any:
        """Forward ``batch``; returns the model output, or None if stopped early."""
        try:
            return self.program.run(batch, self._sink)
        except StopForward:
            return None

    def run_from(self, batch: Tensor, starts: Sequence[Frontier] = ()) -> Frontier | None:
        """Forward ``batch`` until everything wanted is recorded (``stop_early``), begun at the
        deepest of ``starts`` (where earlier runs on the same input stopped) that every wanted
        value is tapped after, else at the input; returns where this run stopped."""
        wanted = [*self._outputs, *self._inputs]
        positions = [p for point in wanted if (p := self.program.tap_position(point)) is not None]
        start = None
        if starts and len(positions) == len(wanted):  # a hooked value: always from the input
            usable = [frontier for frontier in starts if frontier.position <= min(positions)]
            start = max(usable, key=lambda frontier: frontier.position, default=None)
        return self.program.run_until_stopped(batch, self._sink, start)


def capture_layers(program: LayerProgram, batch: Tensor, names: list[str]) -> dict[str, Tensor]:
    """The named layers' outputs for ``batch``, running the forward only as far as needed."""
    capture = ActivationCapture(program, names, stop_early=True)
    with torch.inference_mode():
        capture.run(batch)
    return capture.activations


def capture_resuming(
    program: LayerProgram, batch: Tensor, names: list[str], starts: Sequence[Frontier] = ()
) -> tuple[dict[str, Tensor], Frontier | None]:
    """`capture_layers`, begun at the deepest of ``starts`` (where earlier captures of the same
    input stopped) that comes before every named layer, else at the input; also returns where
    it stopped."""
    capture = ActivationCapture(program, names, stop_early=True)
    with torch.inference_mode():
        stopped = capture.run_from(batch, starts)
    return capture.activations, stopped


def capture_points(
    program: LayerProgram, batch: Tensor, points: Iterable[int]
) -> dict[int, Tensor]:
    """Raw values (layout as computed) at the given program points; stops after the last one."""
    wanted = set(points)
    found: dict[int, Tensor] = {}

    def sink(point: int, value: Tensor) -> None:
        if point in wanted and point not in found:
            found[point] = value.detach().clone()  # callers may apply ops to them again
            if len(found) == len(wanted):
                raise StopForward

    with torch.inference_mode(), contextlib.suppress(StopForward):
        program.run(batch, sink)
    return found
