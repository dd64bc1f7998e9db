"""Feature visualization by activation maximization: the image a channel likes most.

Gradient ascent on the input from faint noise, following Lucid (Olah et al. 2017): the image is
parameterised in a Fourier basis scaled by 1/frequency (and, for RGB, through ImageNet's colour
correlation), mapped to valid pixels by a sigmoid, and shifted by a random jitter every step. Those
three priors keep the optimiser from the high-frequency noise that fools a network without
showing anything. The objective is the channel's mean activation (a vector layer's unit value);
for a layer whose value a ReLU produced (the ReLU module or ``F.relu`` itself, or a block ending in
one) it is the mean of that ReLU's input, which ranks images the same way but still has a gradient
where the channel is silent (a ReLU channel dark on the starting noise could otherwise never light
up). Only the layers up to the target run (``forward_to_layer``), and only the image is optimised.
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from app.core.attribution.hooks import forward_to_layer, gradients_enabled, model_device
from app.core.attribution.progress import Progress
from app.core.layer_program import LayerProgram, program_of

# Layers whose zero floor would stall the ascent: optimise their input instead.
RELU_TYPES = frozenset(("ReLU", "ReLU6", "relu", "relu6"))

COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32
)
"""Square root of ImageNet's RGB covariance (Lucid): decorrelated parameters → natural colours."""
INITIAL_SPECTRUM_STD = 0.01
SPECTRUM_SCALE_DIVISOR = 4.0


@dataclass(frozen=True)
class FeatureVisOptions:
    """Optimisation settings; all of them are part of a result's cache key."""

    steps: int = 128
    learning_rate: float = 0.05
    jitter: int = 8
    seed: int = 0

    def as_key(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureVis:
    """The optimised image (uint8 (H, W, 3) or (H, W)) and the objective before and after."""

    layer: str
    channel: int
    image: np.ndarray
    start_activation: float
    final_activation: float
    options: FeatureVisOptions


class _FourierImage:
    """Pixels in [0, 1] from a learnable, frequency-scaled spectrum (Lucid's ``fft_image``)."""

    def __init__(self, channels: int, height: int, width: int, generator: torch.Generator) -> None:
        freq_y = torch.fft.fftfreq(height)[:, None]
        freq_x = torch.fft.rfftfreq(width)[None, :]
        frequency = torch.sqrt(freq_y**2 + freq_x**2)
        self.scale = 1.0 / torch.clamp(frequency, min=1.0 / max(height, width))
        shape = (channels, height, width // 2 + 1, 2)
        self.spectrum = (
            torch.randn(shape, generator=generator) * INITIAL_SPECTRUM_STD
        ).requires_grad_()
        self.size = (height, width)

    def pixels(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / SPECTRUM_SCALE_DIVISOR
        if image.shape[0] == 3:
            correlation = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
            image = torch.einsum("ij,jhw->ihw", correlation, image)
        return torch.sigmoid(image)


class _Adam:
    """Adam (Kingma & Ba 2015) ascending one tensor in place.

    Written out because ``torch.optim`` pulls in the compiler stack on first import (seconds of
    start-up for the server's first visualization); these five lines are all that is needed.
    """

    def __init__(self, parameter: torch.Tensor, learning_rate: float) -> None:
        self.parameter = parameter
        self.learning_rate = learning_rate
        self.first = torch.zeros_like(parameter)
        self.second = torch.zeros_like(parameter)
        self.steps = 0

    def step(self, gradient: torch.Tensor) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.steps += 1
        self.first.mul_(beta1).add_(gradient, alpha=1 - beta1)
        self.second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        first = self.first / (1 - beta1**self.steps)
        second = self.second / (1 - beta2**self.steps)
        with torch.no_grad():
            self.parameter.add_(self.learning_rate * first / (second.sqrt() + eps))


def _objective(output: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    if output.ndim not in (2, 4):
        raise ValueError(f"layer {layer!r} outputs shape {tuple(output.shape[1:])}")
    if not 0 <= channel < output.shape[1]:
        raise ValueError(f"layer {layer!r} has channels 0..{output.shape[1] - 1}")
    selected = output[:, channel]
    return selected.mean() if output.ndim == 4 else selected.sum()


def objective_layer(program: LayerProgram, layer: str) -> tuple[str, bool]:
    """The layer whose output (False) or input (True) the objective reads: the ReLU that
    produced ``layer``'s value, if one did (layers sharing a program point share the value).
    True means the reported activations are the channel's mean *before* that ReLU."""
    entry = program.by_name.get(layer)
    if entry is None:
        raise KeyError(f"no such layer: {layer!r}")
    for name in program.points[entry.point].layers:
        if program.by_name[name].type in RELU_TYPES:
            return name, True
    return layer, False


def visualize_channel(
    model: nn.Module,
    layer: str,
    channel: int,
    input_shape: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    options: FeatureVisOptions = FeatureVisOptions(),
    progress: Progress | None = None,
) -> FeatureVis:
    """Optimise an input image that maximises ``channel`` of ``layer``.

    ``mean``/``std`` are the model's input normalisation: the image is optimised as pixels in
    [0, 1] and normalised exactly as an upload would be. ``progress`` counts optimisation steps
    and stops the ascent between two of them when cancelled.

    Raises:
        KeyError: no such layer.
        ValueError: the layer's output is neither a feature map nor a vector, or no such channel.
        Cancelled: ``progress`` was cancelled.
    """
    if options.steps < 0 or options.jitter < 0:
        raise ValueError("steps and jitter must not be negative")
    progress = progress or Progress()
    device = model_device(model)
    channels, height, width = input_shape
    generator = torch.Generator().manual_seed(options.seed)
    image = _FourierImage(channels, height, width, generator)
    shift = torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    divide = torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1)

    objective, before_relu = objective_layer(program_of(model), layer)

    def activation(pixels: torch.Tensor) -> torch.Tensor:
        batch = ((pixels - shift) / divide).unsqueeze(0).to(device)
        output = forward_to_layer(model, objective, batch, use_input=before_relu)
        return _objective(output, layer, channel)

    ascent = _Adam(image.spectrum, options.learning_rate)
    with gradients_enabled():
        start = float(activation(image.pixels()).detach())
        progress.begin(options.steps)
        for _ in range(options.steps):
            dy, dx = (
                torch.randint(-options.jitter, options.jitter + 1, (2,), generator=generator)
                if options.jitter
                else torch.zeros(2, dtype=torch.int64)
            )
            jittered = torch.roll(image.pixels(), shifts=(int(dy), int(dx)), dims=(1, 2))
            (gradient,) = torch.autograd.grad(activation(jittered), image.spectrum)
            ascent.step(gradient)
            progress.advance()
        final_pixels = image.pixels().detach()
        final = float(activation(final_pixels).detach())
    pixels = np.rint(final_pixels.permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
    return FeatureVis(
        layer=layer,
        channel=channel,
        image=pixels[:, :, 0] if channels == 1 else pixels,
        start_activation=start,
        final_activation=final,
        options=options,
    )
