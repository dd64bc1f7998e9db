"""The model loader under attack: pickles where weights belong, corrupted safetensors, weights that
are not the ones the spec's sha256 names, missing files. Every case writes its own spec file in a
temporary folder; the real `models/` is only read."""

import hashlib
import io
import pickle
import re
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from app.config import REPO_ROOT, Settings
from app.core.registry import ModelLoadError, ModelRegistry, load_model, read_model_specs
from app.main import create_app
from tests.security.conftest import DIGIT_MODEL, PHOTO_MODEL, bundled_spec, write_spec

pytestmark = pytest.mark.anyio

REAL_WEIGHTS = REPO_ROOT / "models" / "lenet5-mnist.safetensors"


class Payload:
    """Unpickling this runs code: it writes `marker`. A safe loader never gets that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"with open({str(self.marker)!r}, 'w') as f: f.write('pwned')",)


def digit_spec(models_dir: Path, weights: str, sha256: str | None) -> Path:
    """The bundled LeNet-5 spec, written to `models_dir` and pointed at `weights` (and `sha256`)."""
    return write_spec(
        models_dir, DIGIT_MODEL, bundled_spec(DIGIT_MODEL, weights=weights, sha256=sha256)
    )


def load_single(models_dir: Path) -> None:
    specs = read_model_specs(models_dir)
    assert len(specs) == 1
    load_model(specs[0], torch.device("cpu"))


def planted(tmp_path: Path, data: bytes, suffix: str = ".safetensors") -> Path:
    """A models dir holding `data` as the digit model's weights, with its true sha256."""
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / f"weights{suffix}").write_bytes(data)
    digit_spec(models_dir, f"weights{suffix}", hashlib.sha256(data).hexdigest())
    return models_dir


def spec_file(models_dir: Path) -> str:
    """The digit spec's path as error messages spell it, escaped for a regex."""
    return re.escape(str((models_dir / f"{DIGIT_MODEL}.toml").resolve()))


def torch_pickle(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"conv1.weight": Payload(marker)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        (".pth", r"weights: not a plain tensor state dict \(read with weights_only=True"),
        (".pt", r"weights: not a plain tensor state dict \(read with weights_only=True"),
        (".safetensors", "weights: not a valid safetensors"),
    ],
)
@pytest.mark.parametrize("packing", ["torch.save", "pickle.dumps"])
def test_a_pickle_where_weights_belong_is_refused_unexecuted(
    tmp_path: Path, suffix: str, reason: str, packing: str
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
    models_dir = planted(tmp_path, data, suffix)  # sha256 matches: only parsing refuses
    with pytest.raises(ModelLoadError, match=spec_file(models_dir) + ": " + reason):
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
    with pytest.raises(
        ModelLoadError, match=spec_file(models_dir) + ": weights: not a valid safetensors file"
    ):
        load_single(models_dir)


def test_weights_that_differ_from_the_spec_hash_are_refused(tmp_path: Path) -> None:
    real = REAL_WEIGHTS.read_bytes()
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    flipped = bytearray(real)
    flipped[-1] ^= 0x01  # one bit in the last tensor: still parses, but it is not our model
    (models_dir / "weights.safetensors").write_bytes(bytes(flipped))
    real_digest = hashlib.sha256(real).hexdigest()
    digit_spec(models_dir, "weights.safetensors", real_digest)
    expected = (
        f"{spec_file(models_dir)}: sha256: the weights' sha256 is "
        f"{hashlib.sha256(flipped).hexdigest()}, not {real_digest}; refusing to load$"
    )
    with pytest.raises(ModelLoadError, match=expected):
        load_single(models_dir)


def test_tensors_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    models_dir = planted(tmp_path, save({"conv1.weight": torch.zeros(3, 3)}))
    with pytest.raises(
        ModelLoadError, match=spec_file(models_dir) + ": weights: do not fit the architecture"
    ):
        load_single(models_dir)


@pytest.mark.parametrize(
    "path", ["missing.safetensors", "../../nowhere/x.safetensors", "/nonexistent/x.safetensors"]
)
def test_weights_that_do_not_exist_are_a_one_line_error_naming_spec_and_key(
    tmp_path: Path, path: str
) -> None:
    models_dir = tmp_path / "models"
    digit_spec(models_dir, path, sha256=None)
    with pytest.raises(ModelLoadError) as raised:
        load_single(models_dir)
    message = str(raised.value)
    assert "\n" not in message
    missing = (models_dir / path).resolve()
    assert message.startswith(
        f"{(models_dir / f'{DIGIT_MODEL}.toml').resolve()}: weights: cannot read {missing}: "
    )


def test_weights_outside_the_spec_folder_load_when_the_operator_names_them(tmp_path: Path) -> None:
    """Specs come only from the operator's files: a spec-relative `..` path is theirs to choose."""
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "lenet.safetensors").write_bytes(REAL_WEIGHTS.read_bytes())
    models_dir = tmp_path / "specs"
    digit_spec(
        models_dir,
        "../weights/lenet.safetensors",
        hashlib.sha256(REAL_WEIGHTS.read_bytes()).hexdigest(),
    )
    (spec,) = read_model_specs(models_dir)
    assert spec.weights.path == tmp_path.resolve() / "weights" / "lenet.safetensors"
    model = load_model(spec, torch.device("cpu"))
    assert model.weights_sha256 == hashlib.sha256(REAL_WEIGHTS.read_bytes()).hexdigest()


def test_only_spec_ids_are_found(registry: ModelRegistry) -> None:
    assert registry.get(PHOTO_MODEL) is not None
    for name in [
        "../../etc/passwd",
        f"models/{PHOTO_MODEL}",
        f"{PHOTO_MODEL}.toml",
        DIGIT_MODEL,
        "",
    ]:
        assert registry.get(name) is None


async def test_the_server_refuses_to_start_on_bad_weights(tmp_path: Path) -> None:
    models_dir = planted(tmp_path, corruptions()["truncated"])
    app = create_app(Settings(models_dir=models_dir, models="", device="cpu"))
    with pytest.raises(ModelLoadError, match="weights: not a valid safetensors file"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started on corrupted weights")
