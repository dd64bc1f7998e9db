"""ActivationCapture on one model shared by threads: each capture records its own forward only."""

import threading
from collections.abc import Callable

import torch
from torch import nn

from app.core.capture import ActivationCapture

WAIT_SECONDS = 5.0


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Gate(nn.Module):
    """Identity that lets a test pause one thread's forward halfway."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: dict[int, Callable[[], object]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.pauses.get(threading.get_ident(), lambda: None)()
        return x


def test_overlapping_forwards_on_other_threads_are_not_recorded() -> None:
    gate = Gate()
    model = nn.Sequential(Scale(2.0), gate, Scale(3.0))
    other_done = threading.Event()
    paused = threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        def pause() -> None:
            paused.set()
            other_done.wait(WAIT_SECONDS)

        gate.pauses[threading.get_ident()] = pause
        with ActivationCapture(model, ["0", "2"]) as capture:
            results["first_output"] = capture.run(torch.ones(1, 2))
        results["first"] = capture.activations

    def second() -> None:
        paused.wait(WAIT_SECONDS)
        with ActivationCapture(model, ["0"], stop_early=True) as early:
            assert early.run(torch.full((1, 2), 10.0)) is None
        with ActivationCapture(model, ["0", "2"]) as capture:
            capture.run(torch.full((1, 2), 10.0))
        results["second"] = capture.activations
        other_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS * 2)
    assert torch.equal(results["first_output"], torch.full((1, 2), 6.0))
    assert torch.equal(results["first"]["0"], torch.full((1, 2), 2.0))
    assert torch.equal(results["first"]["2"], torch.full((1, 2), 6.0))
    assert torch.equal(results["second"]["2"], torch.full((1, 2), 60.0))
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())
