"""How far a long attribution computation has got, and the flag that stops it.

Occlusion, SmoothGrad and feature visualization loop over batches or optimisation steps. Each
loop reports its steps to a ``Progress`` and checks its cancel flag before every step, so a
cancelled job stops within one batch (torch kernels themselves cannot be interrupted) and the
slot it held is freed. One writer (the worker thread) and any number of readers (the polling
requests) share it; plain ints are enough for that under the GIL.
"""

import threading


class Cancelled(Exception):
    """The job was cancelled; raised by the worker between two steps."""


class Progress:
    """``done`` of ``total`` steps (``total`` is 0 until the computation knows it)."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self._cancel = threading.Event()

    def begin(self, total: int) -> None:
        """Start counting ``total`` steps (raises ``Cancelled`` when cancelled already)."""
        self.check()
        self.total = total
        self.done = 0

    def advance(self, steps: int = 1) -> None:
        """``steps`` more are done; raises ``Cancelled`` when the job was cancelled meanwhile."""
        self.done = min(self.total, self.done + steps) if self.total else self.done + steps
        self.check()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def fraction(self) -> float:
        """Share done, 0.0 before the start."""
        return self.done / self.total if self.total else 0.0
