"""Top-activating patches: ranking, cropping, the shipped file and its checks."""

import json

import numpy as np
import pytest
import torch

from app.config import REPO_ROOT, Settings
from app.core.attribution.top_patches import (
    TopPatchesError,
    compute_top_patches,
    layer_top_patches,
    load_top_patches,
    save_top_patches,
    sha_path,
)
from app.core.digits import load_digits
from app.core.layer_program import program_of
from app.core.preprocess import normalize
from app.core.receptive_field import ReceptiveField
from app.core.registry import ModelRegistry

THREE_BY_THREE = ReceptiveField(size=(3, 3), jump=(1, 1), start=(0.0, 0.0))
"""A 3×3 conv without padding on a 4×4 image: unit (y, x) sees rows y-1..y+1 (start 0 = centre)."""


def digits(count: int) -> np.ndarray:
    return np.arange(count * 16, dtype=np.uint8).reshape(count, 4, 4)


def test_ranking_picks_each_digits_strongest_unit_and_breaks_ties_by_index() -> None:
    maps = np.zeros((4, 2, 2, 2), dtype=np.float32)
    maps[0, 0, 1, 1] = 5.0
    maps[1, 0, 0, 1] = 7.0
    maps[2, 0, 1, 0] = 5.0  # ties with digit 0: the lower index ranks first
    maps[3, 0] = 1.0  # a flat map: its first unit (0, 0) is the strongest
    maps[:, 1, 0, 0] = [0.5, 0.25, 0.75, 1.0]
    labels = np.array([3, 1, 4, 1])

    result = layer_top_patches("conv", maps, THREE_BY_THREE, digits(4), labels, k=3)

    np.testing.assert_array_equal(result.activations[0], [7.0, 5.0, 5.0])
    np.testing.assert_array_equal(result.sources[0], [[1, 1, 0, 1], [0, 3, 1, 1], [2, 4, 1, 0]])
    np.testing.assert_array_equal(result.sources[1][:, 0], [3, 2, 0])


def test_patches_are_the_receptive_field_with_black_outside_the_image() -> None:
    maps = np.zeros((1, 1, 2, 2), dtype=np.float32)
    maps[0, 0, 0, 0] = 1.0
    image = digits(1)
    result = layer_top_patches("conv", maps, THREE_BY_THREE, image, np.array([0]), k=1)
    # Unit (0, 0) with start 0 sees rows and columns -1..1: one row and column outside.
    expected = np.zeros((3, 3), dtype=np.uint8)
    expected[1:, 1:] = image[0, :2, :2]
    np.testing.assert_array_equal(result.patches[0, 0], expected)


def test_capture_path_agrees_with_a_direct_convolution() -> None:
    conv = torch.nn.Conv2d(1, 2, 3, padding=1).eval()
    pixels = digits(5)
    inputs = torch.from_numpy(pixels).float()[:, None] / 255.0
    with torch.no_grad():
        maps = conv(inputs).numpy()
    field = ReceptiveField(size=(3, 3), jump=(1, 1), start=(0.0, 0.0))
    labels = np.arange(5)
    result = compute_top_patches(
        program_of(torch.nn.Sequential(conv)), inputs, pixels, labels, {"0": field}, 2
    )
    expected = layer_top_patches("0", maps, field, pixels, labels, 2)
    np.testing.assert_array_equal(result["0"].sources, expected.sources)
    np.testing.assert_array_equal(result["0"].patches, expected.patches)


def test_file_round_trip_and_integrity_checks(tmp_path) -> None:
    maps = np.random.default_rng(0).random((6, 3, 2, 2), dtype=np.float32)
    layers = {"conv": layer_top_patches("conv", maps, THREE_BY_THREE, digits(6), np.arange(6))}
    path = tmp_path / "m-top-patches.json"
    digest = save_top_patches(path, "m", "abc", layers)
    assert save_top_patches(tmp_path / "again.json", "m", "abc", layers) == digest

    loaded = load_top_patches(path, "abc")
    for field in ("patches", "activations", "sources"):
        np.testing.assert_array_equal(
            getattr(loaded.layers["conv"], field), getattr(layers["conv"], field)
        )
    with pytest.raises(TopPatchesError, match="other weights"):
        load_top_patches(path, "other")
    document = json.loads(path.read_text())
    document["model_id"] = "tampered"
    path.write_text(json.dumps(document))
    with pytest.raises(TopPatchesError, match="sha256"):
        load_top_patches(path, "abc")
    sha_path(path).unlink()
    with pytest.raises(TopPatchesError, match="no top-patches file"):
        load_top_patches(path, "abc")


def test_shipped_lenet_file_matches_a_recomputation(registry: ModelRegistry) -> None:
    """The file in models/ belongs to the shipped weights and to the held-out digits."""
    model = registry.get("lenet5-mnist")
    assert model.spec.top_patches == REPO_ROOT / "models" / "lenet5-mnist-top-patches.json"
    shipped = load_top_patches(model.spec.top_patches, model.weights_sha256)
    split = load_digits(Settings().mnist_dir)
    images = torch.from_numpy(split.test_images[:, None])
    inputs = normalize(images, model.spec.preprocess)
    pixels = np.rint(split.test_images * 255).astype(np.uint8)
    field = model.layer_index["conv2"].receptive_field.rf
    recomputed = compute_top_patches(
        model.program, inputs, pixels, split.test_labels, {"conv2": field}
    )
    np.testing.assert_array_equal(shipped.layers["conv2"].sources, recomputed["conv2"].sources)
    np.testing.assert_array_equal(shipped.layers["conv2"].patches, recomputed["conv2"].patches)
    assert shipped.layers["conv2"].patches.shape == (16, 9, 14, 14)
    assert set(shipped.layers) == {"conv1", "relu1", "pool1", "conv2", "relu2", "pool2"}
