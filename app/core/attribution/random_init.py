"""Fresh instances of a model's architecture: a random twin, or a private trained copy.

The random twin (same architecture, nothing learned) separates what training did from what the
architecture alone imposes: an untrained net's effective receptive field is already a blob, its
first-layer filters are noise rather than edges. A private copy lets long jobs (feature
visualization) run beside the served model without ever sharing its hooks. Both are built anew
from the architecture, never ``deepcopy``-ed: a deep copy would also copy any hooks another
request has on the served model at that moment.
"""

from collections.abc import Callable

import torch
from torch import nn

from app.core.registry import LoadedModel, build_module

ModelFactory = Callable[[], nn.Module]


def architecture_factory(model: LoadedModel) -> ModelFactory:
    """Builds an untrained instance of ``model``'s architecture."""
    return lambda: build_module(model.spec)


def random_init_copy(
    build: ModelFactory, seed: int = 0, device: str | torch.device = "cpu"
) -> nn.Module:
    """The architecture with its own initialisation drawn under ``seed``, in eval mode, no grads.

    A spec's entry point may hand back weights of its own (a pretrained network, a builder that
    seeds itself), so after building, every module that can draw its parameters afresh
    (``reset_parameters``: convs, linears, norms, …) does so under ``seed``, in module order: for
    a plain architecture exactly what its constructor drew. Parameters no module resets (a bare
    layer-scale ``nn.Parameter``) keep the builder's values. The global random state is left as
    it was, so the twin is reproducible and harmless.
    """
    with torch.random.fork_rng(devices=[]):
        twin = build()
        torch.manual_seed(seed)
        with torch.no_grad():
            for module in twin.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
    return twin.eval().requires_grad_(False).to(device)


def trained_copy(model: nn.Module, build: ModelFactory) -> nn.Module:
    """A separate instance holding ``model``'s weights (in eval mode, no grads)."""
    copy = build()
    copy.load_state_dict(model.state_dict(), strict=True)
    return copy.eval().requires_grad_(False).to(next(model.parameters()).device)
