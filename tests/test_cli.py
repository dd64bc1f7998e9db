"""`convlens analyze` writes every panel; every CLI failure is one line and a non-zero exit."""

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli import main
from app.config import REPO_ROOT, get_settings
from app.core.analysis import analyze
from app.core.registry import ModelRegistry
from app.services.analyses import model_input
from tests.conftest import SKIMAGE_DATA

PHOTO = SKIMAGE_DATA / "camera.png"
MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    assert (
        main(["analyze", str(PHOTO), "--model", "lenet5-mnist", "--out", str(out), "--quiet"]) == 0
    )
    return out


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        return image.height, image.width


def test_every_panel_is_written_and_indexed(exported: Path, registry: ModelRegistry) -> None:
    model = registry.get("lenet5-mnist")
    index = json.loads((exported / "index.json").read_text())
    on_disk = sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file())
    assert sorted([*index["files"], "index.json"]) == on_disk
    expected = {"input.png", "predictions.json", "receptive-fields.json", "gradcam.png"}
    expected |= {
        f"feature-maps/{layer.name}.{ext}" for layer in model.layers for ext in ("png", "json")
    }
    expected |= {f"filters/{name}.{ext}" for name in ("conv1", "conv2") for ext in ("png", "json")}
    assert expected <= set(index["files"])
    assert png_size(exported / "input.png") == (28, 28)


def test_predictions_and_feature_maps_match_an_independent_forward(
    exported: Path, registry: ModelRegistry
) -> None:
    model = registry.get("lenet5-mnist")
    inputs = model_input(PHOTO.read_bytes(), MAX_PIXELS, model.spec.preprocess)
    reference = analyze(model, inputs, keep=[layer.name for layer in model.layers])
    predictions = json.loads((exported / "predictions.json").read_text())
    assert predictions["logits"] == reference.logits
    assert [p["index"] for p in predictions["predictions"]] == [
        p.index for p in reference.predictions
    ]
    for name in ("conv1", "relu2", "fc3"):
        meta = json.loads((exported / f"feature-maps/{name}.json").read_text())
        maps = reference.activations[name].numpy()
        per_channel = maps.reshape(maps.shape[0], -1) if maps.ndim == 3 else maps.reshape(1, -1)
        np.testing.assert_array_equal(np.float32(meta["minimums"]), per_channel.min(axis=1))
        np.testing.assert_array_equal(np.float32(meta["maximums"]), per_channel.max(axis=1))
        assert png_size(exported / f"feature-maps/{name}.png") == (
            meta["atlas"]["height"],
            meta["atlas"]["width"],
        )


def test_filters_and_receptive_fields(exported: Path) -> None:
    conv2 = json.loads((exported / "filters/conv2.json").read_text())
    assert conv2["shape"] == [16, 6, 5, 5]
    assert png_size(exported / "filters/conv2.png") == (
        conv2["atlas"]["height"],
        conv2["atlas"]["width"],
    )
    table = json.loads((exported / "receptive-fields.json").read_text())
    fields = {layer["name"]: layer["receptive_field"] for layer in table["layers"]}
    # conv1 5×5 (pad 2) → pool1 2×2/2 → conv2 5×5 → pool2 2×2/2, by hand: (size, jump).
    hand = {"conv1": (5, 1), "pool1": (6, 2), "conv2": (14, 2), "pool2": (16, 4)}
    for name, (size, jump) in hand.items():
        assert (fields[name]["size"], fields[name]["jump"]) == ([size, size], [jump, jump])
    assert table["input_shape"] == [1, 28, 28]


def test_grad_cam_uses_the_last_feature_map_and_the_top_class(
    exported: Path, registry: ModelRegistry
) -> None:
    from app.core.attribution.gradcam import grad_cam

    model = registry.get("lenet5-mnist")
    inputs = model_input(PHOTO.read_bytes(), MAX_PIXELS, model.spec.preprocess)
    meta = json.loads((exported / "gradcam.json").read_text())
    top = json.loads((exported / "predictions.json").read_text())["predictions"][0]["index"]
    assert (meta["layer"], meta["class_index"]) == ("relu2", top)
    reference = grad_cam(model.module, inputs, "relu2", top)
    torch.testing.assert_close(torch.tensor(meta["cam"]), reference.cam, rtol=0, atol=1e-6)
    assert png_size(exported / "gradcam.png") == (28, 28)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convlens: error: "), err
    return err


def test_a_missing_image_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    code = main(["analyze", str(missing), "--model", "lenet5-mnist", "--out", str(tmp_path)])
    assert code == 1
    assert (
        one_line_error(capsys)
        == f"convlens: error: cannot read {missing}: No such file or directory\n"
    )


def test_an_unknown_model_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["analyze", str(PHOTO), "--model", "resnet-9000", "--out", str(tmp_path / "o")])
    assert code == 1
    assert "no model 'resnet-9000'" in one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_an_image_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture at all")
    code = main(["analyze", str(fake), "--model", "lenet5-mnist", "--out", str(tmp_path / "o")])
    assert code == 1
    assert one_line_error(capsys).startswith(f"convlens: error: {fake}: ")
    assert not (tmp_path / "o").exists()


def test_a_usage_mistake_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["analyze", str(PHOTO), "--model", "lenet5-mnist"])
    assert exited.value.code == 2
    assert "--out" in one_line_error(capsys)


def test_models_lists_every_bundled_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = sorted((REPO_ROOT / "models").glob("*.toml"))  # each spec is named after its id
    assert [line.split()[0] for line in lines] == [file.stem for file in files]
    assert [line.rsplit(" (", 1)[1] for line in lines] == [f"{file})" for file in files]
    kinds = dict(line.split()[:2] for line in lines)
    assert (kinds["efficientnet-lite0"], kinds["lenet5-mnist"]) == ("photo", "digit")


@pytest.fixture
def extra_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`CONVLENS_MODELS` as set by the test, read afresh by the CLI's cached settings."""
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def user_spec(tmp_path: Path, id_line: str = 'id = "my-net"') -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(
        f"""{id_line}
name = "My net"
description = "two classes"
entry_point = "mynet:build"
weights = "mynet.safetensors"
labels = ["cat", "dog"]
[input]
channels = 3
height = 8
width = 8
""",
        encoding="utf-8",
    )
    return path


def test_models_lists_the_operators_specs_after_the_bundled_ones(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extra_models: None,
) -> None:
    monkeypatch.setenv("CONVLENS_MODELS", str(user_spec(tmp_path)))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    bundled = [file.stem for file in sorted((REPO_ROOT / "models").glob("*.toml"))]
    assert [line.split()[0] for line in lines] == [*bundled, "my-net"]
    assert lines[-1].endswith(f"({(tmp_path / 'mine.toml').resolve()})")


def test_a_bad_spec_is_one_line_naming_file_and_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extra_models: None,
) -> None:
    spec = user_spec(tmp_path, 'id = "My Net"')
    monkeypatch.setenv("CONVLENS_MODELS", str(spec))
    assert main(["models"]) == 1
    assert one_line_error(capsys).startswith(f"convlens: error: {spec.resolve()}: id: must match")
