"""Convolution playground: a small input through conv, pooling or ReLU with every step shown.

``geometry`` holds the limits and the output-size formula with its fit explanations,
``operations`` the torch computations and their step-by-step arithmetic.
"""

from app.core.playground.geometry import (
    MAX_CHANNELS,
    MAX_KERNEL_SIDE,
    MAX_KERNELS,
    MAX_SIDE,
    MAX_STEP_VALUES,
    MAX_STEPS,
    MAX_VALUE,
    AxisFit,
    Geometry,
    PlaygroundError,
    resolve_geometry,
)
from app.core.playground.operations import (
    Im2Col,
    Operation,
    PlaygroundResult,
    Step,
    as_tensor,
    convolve,
    im2col,
    pool,
    relu,
    run,
)

__all__ = [
    "MAX_CHANNELS",
    "MAX_KERNELS",
    "MAX_KERNEL_SIDE",
    "MAX_SIDE",
    "MAX_STEPS",
    "MAX_STEP_VALUES",
    "MAX_VALUE",
    "AxisFit",
    "Geometry",
    "Im2Col",
    "Operation",
    "PlaygroundError",
    "PlaygroundResult",
    "Step",
    "as_tensor",
    "convolve",
    "im2col",
    "pool",
    "relu",
    "resolve_geometry",
    "run",
]
