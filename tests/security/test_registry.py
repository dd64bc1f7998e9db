"""The model loader under attack: pickles where weights belong, corrupted safetensors, paths out of
the models dir. Every case builds a temporary models dir; the real `models/` is only read."""

import hashlib
import io
import json
import pickle
import struct
from pathlib import Path

import pytest
import torch

from app.config import REPO_ROOT, Settings
from app.core.registry import ModelLoadError, ModelRegistry, load_model, read_manifest
from app.main import create_app
from tests.security.conftest import DIGIT_MODEL, PHOTO_MODEL, write_models_dir

pytestmark = pytest.mark.anyio

REAL_WEIGHTS = REPO_ROOT / "models" / "lenet5-mnist.safetensors"


class Payload:
    """Unpickling this runs code: it writes `marker`. A safe loader never gets that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"with open({str(self.marker)!r}, 'w') as f: f.write('pwned')",)


def digit_entry(file_name: str, data: bytes, weights_format: str = "safetensors") -> dict:
    """The real LeNet-5 manifest entry, pointed at `file_name` with `data`'s true sha256."""
    entry = json.loads((REPO_ROOT / "models" / "manifest.json").read_text(encoding="utf-8"))
    entry = next(model for model in entry["models"] if model["id"] == DIGIT_MODEL)
    entry["weights"] = {
        "source": "file",
        "path": file_name,
        "format": weights_format,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return entry


def load_single(models_dir: Path) -> None:
    specs = read_manifest(models_dir)
    assert len(specs) == 1
    load_model(specs[0], models_dir, torch.device("cpu"))


def planted(tmp_path: Path, data: bytes, weights_format: str = "safetensors") -> Path:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "weights.bin").write_bytes(data)
    return write_models_dir(models_dir, [digit_entry("weights.bin", data, weights_format)])


def torch_pickle(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"conv1.weight": Payload(marker)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("weights_format", "reason"),
    [
        ("torch-state-dict", "not a plain tensor state dict"),
        ("safetensors", "not a valid safetensors"),
    ],
)
@pytest.mark.parametrize("packing", ["torch.save", "pickle.dumps"])
def test_a_pickle_where_weights_belong_is_refused_unexecuted(
    tmp_path: Path, weights_format: str, reason: str, packing: str
) -> None:
    marker = tmp_path / "pwned"
    if packing == "torch.save":
        data = torch_pickle(marker)
        torch.load(io.BytesIO(data), weights_only=False)  # the control: the payload is live
    else:
        data = pickle.dumps({"conv1.weight": Payload(marker)})
        pickle.loads(data)  # the control: the payload is live
    assert marker.read_text() == "pwned"
    marker.unlink()
    models_dir = planted(tmp_path, data, weights_format)  # sha256 matches: only parsing refuses
    with pytest.raises(ModelLoadError, match=reason):
        load_single(models_dir)
    assert not marker.exists()


def corruptions() -> dict[str, bytes]:
    """The real LeNet-5 safetensors file, broken in the ways a damaged download breaks it."""
    data = REAL_WEIGHTS.read_bytes()
    header_size = struct.unpack("<Q", data[:8])[0]
    header = data[8 : 8 + header_size]
    return {
        "truncated": data[: len(data) // 2],
        "header-only": data[: 8 + header_size],
        "length-prefix-huge": struct.pack("<Q", 2**62) + data[8:],
        "header-not-json": data[:8] + b"\x00" * header_size + data[8 + header_size :],
        "offsets-out-of-range": data[:8]
        + header.replace(b'"data_offsets":[0,', b'"data_offsets":[9,', 1)
        + data[8 + header_size :],
        "empty": b"",
    }


@pytest.mark.parametrize("name", sorted(corruptions()))
def test_a_corrupted_safetensors_file_is_refused_with_a_clear_message(
    tmp_path: Path, name: str
) -> None:
    models_dir = planted(tmp_path, corruptions()[name])
    with pytest.raises(ModelLoadError, match=rf"model '{DIGIT_MODEL}': weights are not a valid"):
        load_single(models_dir)


def test_weights_that_differ_from_the_manifest_hash_are_refused(tmp_path: Path) -> None:
    real = REAL_WEIGHTS.read_bytes()
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    flipped = bytearray(real)
    flipped[-1] ^= 0x01  # one bit in the last tensor: still parses, but it is not our model
    (models_dir / "weights.bin").write_bytes(bytes(flipped))
    write_models_dir(models_dir, [digit_entry("weights.bin", real)])
    with pytest.raises(ModelLoadError, match=r"does not match the manifest's .*refusing to load"):
        load_single(models_dir)


def test_tensors_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save

    data = save({"conv1.weight": torch.zeros(3, 3)})
    with pytest.raises(ModelLoadError, match="weights do not fit the architecture"):
        load_single(planted(tmp_path, data))


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "sub/../../x.safetensors"])
def test_weights_paths_must_stay_inside_the_models_dir(tmp_path: Path, path: str) -> None:
    models_dir = tmp_path / "models"
    entry = digit_entry(path, b"")
    write_models_dir(models_dir, [entry])
    with pytest.raises(ModelLoadError, match="must stay inside"):
        load_single(models_dir)


def test_only_manifest_ids_are_found(registry: ModelRegistry) -> None:
    assert registry.get(PHOTO_MODEL) is not None
    for name in ["../../etc/passwd", f"models/{PHOTO_MODEL}", "manifest.json", DIGIT_MODEL, ""]:
        assert registry.get(name) is None


async def test_the_server_refuses_to_start_on_bad_weights(tmp_path: Path) -> None:
    models_dir = planted(tmp_path, corruptions()["truncated"])
    app = create_app(Settings(models_dir=models_dir, device="cpu"))
    with pytest.raises(ModelLoadError, match="weights are not a valid safetensors file"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started on corrupted weights")
