"""Train MyNet for a few seconds and save its weights: ``mynet.safetensors`` beside this file.

Run from the repository root, after ``make test-deps`` has unpacked the MNIST digits into
``.cache/mnist``: ``.venv/bin/python docs/models/example/train.py``. Two epochs over the 9,000
training digits (Adam, seed 0, one thread); prints the held-out accuracy on the other 1,000.
The normalization comes from ``mynet.toml``, so the spec and the training cannot disagree.
"""

import sys
import time
import tomllib
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from app.config import get_settings
from app.core.digits import load_digits

HERE = Path(__file__).resolve().parent
EPOCHS = 2
BATCH_SIZE = 64

sys.path.insert(0, str(HERE))
from mynet import build  # noqa: E402  (the model file beside this script)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    preprocess = tomllib.loads((HERE / "mynet.toml").read_text(encoding="utf-8"))["preprocess"]
    mean, std = preprocess["mean"][0], preprocess["std"][0]
    split = load_digits(get_settings().mnist_dir)
    images = (torch.from_numpy(split.train_images).unsqueeze(1) - mean) / std
    labels = torch.from_numpy(split.train_labels)
    model = build()
    started = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(images)).split(BATCH_SIZE):
            loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.inference_mode():
        held_out = (torch.from_numpy(split.test_images).unsqueeze(1) - mean) / std
        predicted = model(held_out).argmax(dim=1).numpy()
    accuracy = float((predicted == split.test_labels).mean())
    save_file(model.state_dict(), HERE / "mynet.safetensors")
    print(
        f"trained in {seconds:.1f} s; held-out accuracy {accuracy:.3f} on {len(predicted)} digits"
    )


if __name__ == "__main__":
    main()
