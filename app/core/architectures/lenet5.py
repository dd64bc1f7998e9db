"""LeNet-5 for 28×28 grey digits, plus loading of its trained safetensors weights.

Every layer, activations and pooling included, is its own named child module so forward hooks can
capture each stage under a stable dotted name (``conv1``, ``relu1``, …). Nothing runs in place:
captured activations must never be overwritten by a later layer.
"""

from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

DIGIT_CLASSES = 10
"""Output classes: the digits 0–9, in order."""


@dataclass(frozen=True)
class Normalization:
    """Input scaling the weights were trained with: the model consumes ``(x - mean) / std``.

    ``x`` is the white-ink-on-black image in [0, 1].
    """

    mean: float
    std: float


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling; ``conv1`` pads by 2 so 28×28 inputs act as LeCun's 32×32.

    Shapes for a ``(N, 1, 28, 28)`` input: conv1/relu1 6×28×28, pool1 6×14×14, conv2/relu2 16×10×10,
    pool2 16×5×5, flatten 400, fc1/relu3 120, fc2/relu4 84, fc3 10 logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, DIGIT_CLASSES)

    def forward(self, images: Tensor) -> Tensor:
        """Map normalized ``(N, 1, 28, 28)`` images to ``(N, 10)`` logits."""
        features = self.pool1(self.relu1(self.conv1(images)))
        features = self.pool2(self.relu2(self.conv2(features)))
        hidden = self.relu3(self.fc1(self.flatten(features)))
        hidden = self.relu4(self.fc2(hidden))
        return self.fc3(hidden)


def load_lenet5(weights_path: Path) -> tuple[LeNet5, Normalization]:
    """Build a LeNet5 in eval mode from a safetensors file written by training.

    The normalization travels in the file's metadata so weights and their input scaling can never
    be paired wrongly.

    Raises:
        ValueError: the metadata lacks ``mean``/``std`` or the tensors do not fit the architecture.
    """
    with safe_open(weights_path, framework="pt") as weights_file:
        metadata = weights_file.metadata() or {}
    try:
        normalization = Normalization(mean=float(metadata["mean"]), std=float(metadata["std"]))
    except (KeyError, ValueError) as error:
        raise ValueError(f"{weights_path}: metadata needs numeric 'mean' and 'std'") from error
    model = LeNet5()
    try:
        model.load_state_dict(load_file(weights_path))
    except RuntimeError as error:
        raise ValueError(f"{weights_path}: tensors do not match LeNet5: {error}") from error
    return model.eval(), normalization
