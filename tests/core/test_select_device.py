"""select_device: auto|cpu|cuda, checked on a CPU machine by faking whether CUDA is there."""

import pytest
import torch

from app.config import Settings
from app.core.registry import ModelLoadError, select_device


@pytest.mark.parametrize(
    ("preference", "cuda_available", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cpu", False, "cpu"),
        ("cuda", True, "cuda"),
    ],
)
def test_device_choice(
    monkeypatch: pytest.MonkeyPatch, preference: str, cuda_available: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_available)
    assert select_device(preference) == torch.device(expected)


def test_cuda_without_a_gpu_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="CONVLENS_DEVICE=cuda but no CUDA device"):
        select_device("cuda")


def test_the_setting_accepts_only_the_three_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_DEVICE", "cuda")
    assert Settings().device == "cuda"
    monkeypatch.setenv("CONVLENS_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device"):
        Settings()
