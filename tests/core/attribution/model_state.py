"""Checks that an attribution method left a model exactly as it found it."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelState:
    training: dict[str, bool]
    requires_grad: dict[str, bool]
    values: dict[str, torch.Tensor]


def snapshot(model: nn.Module) -> ModelState:
    return ModelState(
        training={name: module.training for name, module in model.named_modules()},
        requires_grad={name: p.requires_grad for name, p in model.named_parameters()},
        values={name: t.detach().clone() for name, t in model.state_dict().items()},
    )


def assert_unchanged(model: nn.Module, before: ModelState) -> None:
    """No hooks left, same modes and flags, no gradients accumulated, identical weights."""
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not module._backward_hooks
    assert snapshot(model).training == before.training
    assert snapshot(model).requires_grad == before.requires_grad
    assert all(p.grad is None for p in model.parameters())
    for name, value in model.state_dict().items():
        assert torch.equal(value, before.values[name]), name
