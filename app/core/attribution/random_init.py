"""A randomly initialised twin of a trained model: same architecture, nothing learned.

Comparing with it separates what training did from what the architecture alone imposes (the
effective receptive field of an untrained net is already a blob; its first-layer filters are
noise, not edges). The twin is a deep copy whose layers are re-initialised with PyTorch's default
scheme under a fixed seed, without touching the global random state or the trained model.
"""

import copy

import torch
from torch import nn


def random_init_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A re-initialised deep copy of ``model`` in eval mode with gradients off for its parameters.

    Every submodule with ``reset_parameters`` (conv, linear, batch norm: weights, biases and
    running statistics) is reset; the copy is reproducible for a given ``seed``.
    """
    twin = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in twin.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return twin.eval().requires_grad_(False)


def first_conv_layer(model: nn.Module) -> str:
    """Dotted name of the first ``Conv2d`` in registration order (the one that sees pixels).

    Raises:
        ValueError: the model has no convolution.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise ValueError("the model has no Conv2d layer")
