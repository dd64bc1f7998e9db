"""Deterministic, non-trivial weights for every zoo model, in one place.

Freshly constructed norms are identities (running mean 0, variance 1, weight 1, bias 0), which would
let a capture bug that skips or repeats a norm go unnoticed, and PyTorch's default init shrinks
activations layer after layer until deep nets answer the same logits for every input (biases
dominate). So every conv and linear layer gets He-normal weights and small random biases, and every
norm gets seeded random statistics and affine parameters: each layer visibly changes its input and
the logits depend on it.
"""

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)

NORMS = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
"""Norm layers whose affine parameters (and running statistics, for batch norm) are randomized."""


def randomize(model: nn.Module) -> None:
    """Re-initialize ``model``'s convs, linears and norms in place from the current RNG state."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1)
            if isinstance(module, nn.BatchNorm2d) and module.running_var is not None:
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, NORMS) and module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
            if isinstance(module, NORMS) and module.bias is not None:
                module.bias.normal_(0.0, 0.1)


def seeded_eval(factory: Callable[[], M], seed: int) -> M:
    """Build ``factory()`` under ``torch.manual_seed(seed)``, randomize it, return it in eval mode.

    The global RNG is forked: building a zoo model never changes the random numbers tests draw next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory()
        randomize(model)
    return model.eval()
