"""Top-activating patches (Zeiler & Fergus 2014, fig. 2): the inputs a channel fires on hardest.

For every channel of a layer, each held-out digit contributes its strongest unit (first one on
ties); the ``k`` digits with the largest of those values give the grid, each cropped to that
unit's receptive-field box (pixels outside the image are black, MNIST's background). The result
is computed once from the fixed held-out split (``convlens top-patches``) and shipped as JSON
beside the weights it belongs to, with a ``.sha256`` file: serving never needs the data set.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.core.capture import ActivationCapture
from app.core.digits import load_digits
from app.core.layer_program import LayerProgram
from app.core.preprocess import normalize
from app.core.receptive_field import ReceptiveField, receptive_field_box
from app.core.registry import LoadedModel

FORMAT = "convlens-top-patches/1"
TOP_K = 9


class TopPatchesError(ValueError):
    """The shipped file is missing, corrupt, or belongs to other weights."""


@dataclass(frozen=True)
class LayerPatches:
    """``patches`` uint8 (C, k, h, w); ``activations`` (C, k); ``sources`` (C, k, 4) rows of
    (held-out digit index, its label, unit y, unit x)."""

    layer: str
    patches: np.ndarray
    activations: np.ndarray
    sources: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.patches.shape[0])


@dataclass(frozen=True)
class TopPatchSet:
    """Every layer's patches for one model's weights."""

    model_id: str
    weights_sha256: str
    layers: dict[str, LayerPatches]


def _crop(image: np.ndarray, field: ReceptiveField, y: int, x: int) -> np.ndarray:
    """The unit's receptive-field box cut from ``image`` (H, W); outside the image is 0."""
    height, width = image.shape
    box = receptive_field_box(field, y, x, (height, width))
    patch = np.zeros((box.height, box.width), dtype=image.dtype)
    top, left = max(box.top, 0), max(box.left, 0)
    bottom, right = min(box.bottom, height - 1), min(box.right, width - 1)
    if bottom >= top and right >= left:
        patch[top - box.top : bottom - box.top + 1, left - box.left : right - box.left + 1] = image[
            top : bottom + 1, left : right + 1
        ]
    return patch


def layer_top_patches(
    layer: str,
    maps: np.ndarray,
    field: ReceptiveField,
    pixels: np.ndarray,
    labels: np.ndarray,
    k: int = TOP_K,
) -> LayerPatches:
    """Top-``k`` digits per channel from one layer's (N, C, h, w) maps of (N, H, W) uint8 digits."""
    count, channels, _, width = maps.shape
    flat = maps.reshape(count, channels, -1)
    strongest = flat.argmax(axis=2)  # first maximum on ties
    values = np.take_along_axis(flat, strongest[..., None], axis=2)[..., 0]
    patches, activations, sources = [], [], []
    for channel in range(channels):
        order = np.argsort(-values[:, channel], kind="stable")[:k]
        units = [divmod(int(strongest[i, channel]), width) for i in order]
        patches.append(
            np.stack(
                [_crop(pixels[i], field, y, x) for i, (y, x) in zip(order, units, strict=True)]
            )
        )
        activations.append(values[order, channel])
        sources.append(
            [[int(i), int(labels[i]), y, x] for i, (y, x) in zip(order, units, strict=True)]
        )
    return LayerPatches(
        layer=layer,
        patches=np.stack(patches),
        activations=np.asarray(activations, dtype=np.float32),
        sources=np.asarray(sources, dtype=np.int64),
    )


def compute_top_patches(
    program: LayerProgram,
    inputs: torch.Tensor,
    pixels: np.ndarray,
    labels: np.ndarray,
    fields: dict[str, ReceptiveField],
    k: int = TOP_K,
) -> dict[str, LayerPatches]:
    """Top patches for each layer in ``fields`` from model ``inputs`` (N, C, H, W) and the same
    digits as uint8 ``pixels`` (N, H, W) to crop from."""
    capture = ActivationCapture(program, list(fields))
    with torch.inference_mode():
        capture.run(inputs)
    return {
        name: layer_top_patches(
            name, capture.activations[name].float().cpu().numpy(), field, pixels, labels, k
        )
        for name, field in fields.items()
    }


def _encode(array: np.ndarray) -> dict[str, object]:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "base64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
    }


def _decode(item: dict[str, object], dtype: str, ndim: int) -> np.ndarray:
    if item.get("dtype") != dtype or not isinstance(item.get("shape"), list):
        raise TopPatchesError(f"expected a {dtype} array")
    shape = tuple(int(v) for v in item["shape"])  # type: ignore[union-attr]
    data = base64.b64decode(str(item["base64"]), validate=True)
    array = np.frombuffer(data, dtype=dtype)
    if len(shape) != ndim or array.size != int(np.prod(shape)):
        raise TopPatchesError(f"array data does not match its shape {shape}")
    return array.reshape(shape)


def save_top_patches(
    path: Path, model_id: str, weights_sha256: str, layers: dict[str, LayerPatches]
) -> str:
    """Write the JSON file and its ``.sha256`` beside it; returns the sha256 (reproducible)."""
    document = {
        "format": FORMAT,
        "model_id": model_id,
        "weights_sha256": weights_sha256,
        "layers": {
            name: {
                "patches": _encode(item.patches),
                "activations": _encode(item.activations),
                "sources": _encode(item.sources),
            }
            for name, item in layers.items()
        },
    }
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    path.write_bytes(data)
    sha_path(path).write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return digest


def sha_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def load_top_patches(path: Path, weights_sha256: str) -> TopPatchSet:
    """Read a shipped file, checking its sha256 and that it was made from these weights.

    Raises:
        TopPatchesError: missing, corrupt, or computed from other weights.
    """
    try:
        data = path.read_bytes()
        expected = sha_path(path).read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError) as error:
        raise TopPatchesError(f"no top-patches file at {path}: {error}") from error
    if hashlib.sha256(data).hexdigest() != expected:
        raise TopPatchesError(f"{path.name} does not match its sha256; regenerate it")
    try:
        document = json.loads(data)
        known = document["format"] == FORMAT
        layers = {
            name: LayerPatches(
                layer=name,
                patches=_decode(item["patches"], "uint8", 4),
                activations=_decode(item["activations"], "float32", 2),
                sources=_decode(item["sources"], "int64", 3),
            )
            for name, item in document["layers"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise TopPatchesError(f"{path.name} is malformed: {error}") from error
    if not known:
        raise TopPatchesError(f"{path.name}: unknown format {document['format']!r}")
    if document["weights_sha256"] != weights_sha256:
        raise TopPatchesError(
            f"{path.name} was computed for other weights; run `convlens top-patches` again"
        )
    return TopPatchSet(str(document["model_id"]), weights_sha256, layers)


def write_digit_top_patches(model: LoadedModel, data_dir: Path, out_path: Path) -> str:
    """Compute the patches of every feature-map layer from the held-out digits and ship them.

    Returns the written file's sha256.
    """
    split = load_digits(data_dir)
    pixels = np.rint(split.test_images * 255.0).astype(np.uint8)
    images = torch.from_numpy(split.test_images).unsqueeze(1)
    inputs = model.batch(normalize(images, model.spec.preprocess))
    fields = {
        layer.name: layer.receptive_field.rf
        for layer in model.layers
        if len(layer.output_shape) == 3 and layer.receptive_field.rf is not None
    }
    layers = compute_top_patches(model.program, inputs, pixels, split.test_labels, fields)
    return save_top_patches(out_path, model.spec.id, model.weights_sha256, layers)
