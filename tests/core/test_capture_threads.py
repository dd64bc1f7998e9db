"""ActivationCapture on one model object shared by threads, as the server runs it.

Each capture records its own thread's forward only, whether the program is the traced one (taps
with a thread-local sink) or the hooks fallback (hooks that every thread's forward calls).
"""

import threading
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.capture import ActivationCapture
from app.core.layer_program import LayerProgram

WAIT_SECONDS = 5.0
METHODS = ["fx", "hooks"]


def scaling(factor: float) -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2) * factor)
    return layer


class TwoScales(nn.Module):
    """×2 then ×3; with ``data_dependent`` a Python check on the values makes fx give up."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.first, self.second = scaling(2.0), scaling(3.0)
        self.data_dependent = method == "hooks"

    def forward(self, x: Tensor) -> Tensor:
        x = self.first(x)
        if self.data_dependent and torch.isnan(x).any():
            raise ValueError("NaN activations")
        return self.second(x)


def shared_program(method: str) -> tuple[TwoScales, LayerProgram]:
    model = TwoScales(method).eval()
    program = LayerProgram.build(model)
    assert program.method == method
    assert [layer.name for layer in program.layers] == ["first", "second"]
    return model, program


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def run_threads(*targets: Callable[[], None]) -> None:
    """Run ``targets`` on threads at once; re-raise the first failure on this thread."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS * 2)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("method", METHODS)
def test_a_forward_on_another_thread_during_a_capture_is_not_recorded(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, program = shared_program(method)
    paused, other_done = threading.Event(), threading.Event()
    pausing: set[int] = set()
    second = model.second

    def pausable(x: Tensor) -> Tensor:  # the first thread waits here, between its two layers
        if threading.get_ident() in pausing:
            paused.set()
            assert other_done.wait(WAIT_SECONDS)
        return F.linear(x, second.weight)

    monkeypatch.setattr(second, "forward", pausable)
    results: dict[str, ActivationCapture] = {}
    outputs: dict[str, Tensor | None] = {}

    def first() -> None:
        pausing.add(threading.get_ident())
        capture = ActivationCapture(program, inputs_of=["second"])
        with torch.no_grad():
            outputs["first"] = capture.run(torch.ones(1, 2))
        results["first"] = capture

    def other() -> None:
        assert paused.wait(WAIT_SECONDS)
        try:
            early = ActivationCapture(program, ["first"], stop_early=True)
            with torch.no_grad():
                outputs["early"] = early.run(torch.full((1, 2), 10.0))
            capture = ActivationCapture(program)
            with torch.no_grad():
                outputs["other"] = capture.run(torch.full((1, 2), 10.0))
            with torch.no_grad():
                outputs["plain"] = program.run(torch.full((1, 2), 100.0), None)
        finally:
            other_done.set()
        results["early"], results["other"] = early, capture

    run_threads(first, other)
    assert paused.is_set()  # the forwards really overlapped
    expected = {
        "first": {"first": 2.0, "second": 6.0},
        "early": {"first": 20.0},
        "other": {"first": 20.0, "second": 60.0},
    }
    for key, values in expected.items():
        capture = results[key]
        assert capture.order == list(values), key
        for name, value in values.items():
            assert torch.equal(capture.activations[name], torch.full((1, 2), value)), (key, name)
    assert torch.equal(results["first"].inputs["second"], torch.full((1, 2), 2.0))
    assert outputs["early"] is None
    for key, value in [("first", 6.0), ("other", 60.0), ("plain", 600.0)]:
        assert torch.equal(outputs[key], torch.full((1, 2), value)), key
    assert hook_count(model) == 0


@pytest.mark.parametrize("method", METHODS)
def test_many_threads_capturing_at_once_each_get_their_own_values(method: str) -> None:
    model, program = shared_program(method)
    start = threading.Barrier(4)
    seen: dict[float, list[list[Tensor]]] = {}

    def capturing(value: float) -> Callable[[], None]:
        def target() -> None:
            start.wait(WAIT_SECONDS)
            runs = seen.setdefault(value, [])
            for _ in range(30):
                capture = ActivationCapture(program)
                with torch.no_grad():
                    capture.run(torch.full((1, 2), value))
                assert capture.order == ["first", "second"]
                runs.append([capture.activations["first"], capture.activations["second"]])

        return target

    def plain() -> None:
        start.wait(WAIT_SECONDS)
        with torch.no_grad():
            for _ in range(30):
                program.run(torch.full((1, 2), -1.0), None)

    run_threads(capturing(1.0), capturing(2.0), capturing(3.0), plain)
    for value, runs in seen.items():
        assert len(runs) == 30
        for first, second in runs:
            assert torch.equal(first, torch.full((1, 2), 2 * value))
            assert torch.equal(second, torch.full((1, 2), 6 * value))
    assert hook_count(model) == 0


@pytest.mark.parametrize("method", METHODS)
def test_no_hooks_but_the_fallback_s_own_and_only_while_it_runs(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, program = shared_program(method)
    during: list[int] = []
    second = model.second

    def counting(x: Tensor) -> Tensor:
        during.append(hook_count(model))
        return F.linear(x, second.weight)

    monkeypatch.setattr(second, "forward", counting)
    capture = ActivationCapture(program)
    with torch.no_grad():
        assert hook_count(model) == 0
        capture.run(torch.ones(1, 2))
    # The fx program is a GraphModule with taps: no hook anywhere, even during the forward.
    assert during == [0 if method == "fx" else 2] and capture.order == ["first", "second"]
    assert hook_count(model) == 0
    failed = ActivationCapture(program)
    with pytest.raises(RuntimeError):
        failed.run(torch.ones(1, 3))  # three features where the first layer wants two
    assert hook_count(model) == 0 and failed.activations == {}
    capture = ActivationCapture(program)
    with pytest.raises(ZeroDivisionError), torch.no_grad():
        capture.run(torch.ones(1, 2))
        _ = 1 / 0
    assert hook_count(model) == 0 and capture.order == ["first", "second"]
