"""The CIFAR-10 classifier of PyTorch's "Deep Learning with PyTorch: A 60 Minute Blitz" tutorial.

Tricky constructs kept on purpose: activations are functional (``F.relu``), so they are not modules
and fire no hooks; the one ``self.pool`` module is called twice per forward, so its hooks fire twice
with different shapes (6×28×28 → 6×14×14, then 16×10×10 → 16×5×5); ``torch.flatten(x, 1)`` is
functional too.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.seeding import seeded_eval

INPUT_SHAPE = (3, 32, 32)


class Net(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(num_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """The tutorial's ``Net`` with seeded default initialization."""
    return seeded_eval(lambda: Net(num_classes), seed)
