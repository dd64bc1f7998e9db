"""MyNet: a tiny CNN for 28×28 digits, the worked example of docs/models/your-own.md."""

import torch
from torch import nn
from torch.nn import functional as F


class MyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # functional ops: no module, no hook
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def build(num_classes: int = 10) -> MyNet:
    """The spec's entry point (``entry_point = "mynet:build"``)."""
    return MyNet(num_classes)
