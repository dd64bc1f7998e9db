"""`convlens analyze` writes every panel; every CLI failure is one line and a non-zero exit."""

import hashlib
import io
import json
import shutil
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


EXAMPLE = REPO_ROOT / "docs" / "models" / "example"
EXAMPLE_FILES = ("mynet.py", "mynet.toml", "mynet.safetensors")
# MyNet by hand: 3×3 convs (pad 1) and 2×2/2 pools; receptive field size grows by (k - 1) × jump.
MYNET_TABLE = {
    "conv1": ("conv", "8×28×28", "3×3", "1"),
    "relu": ("activation", "8×28×28", "3×3", "1"),
    "max_pool2d": ("pool", "8×14×14", "4×4", "2"),
    "conv2": ("conv", "16×14×14", "8×8", "2"),
    "relu_1": ("activation", "16×14×14", "8×8", "2"),
    "max_pool2d_1": ("pool", "16×7×7", "10×10", "4"),
    "flatten": ("flatten", "784", "10×10", "4"),
    "fc": ("linear", "10", "global", ""),
}


def report_rows(lines: list[str], header: str) -> list[str]:
    """The lines after the one starting with ``header`` (stripped), up to the next blank line."""
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header)) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


def test_check_model_passes_the_example_and_lists_its_panels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = EXAMPLE / "mynet.toml"
    assert main(["check-model", str(spec)]) == 0
    lines = capsys.readouterr().out.splitlines()
    digest = hashlib.sha256((EXAMPLE / "mynet.safetensors").read_bytes()).hexdigest()
    assert lines[0] == f"mynet: MyNet · digits (bring-your-own example)  ({spec.resolve()})"
    assert lines[1].strip() == (
        "entry point mynet:build, 9,098 parameters, 10 classes, input digit 1×28×28"
    )
    assert lines[2].strip() == f"weights sha256 {digest}"  # pinned: no "add it" note
    assert "torch.fx trace" in lines[3]
    table = {}
    for row in report_rows(lines, "layer "):
        cells, ok, _ = row.partition("  ok (unit Δ ")
        assert ok, row  # every layer passed, its centre unit's arithmetic checked
        name, kind, shape, size, *jump = cells.split()
        table[name] = (kind, shape, size, "".join(jump))
    assert table == MYNET_TABLE
    panels = {}
    for row in report_rows(lines, "panels:"):
        mark, _, text = row.strip().partition(" ")
        name, _, reason = text.partition(": ")
        panels[name] = (mark, reason)
    assert all(mark == "✓" and not reason for mark, reason in panels.values() if mark == "✓")
    assert panels["draw canvas"] == ("✓", "")  # input.kind = "digit"
    assert panels["filters"] == panels["Grad-CAM"] == panels["receptive fields"] == ("✓", "")
    assert panels["top-activating patches"] == ("·", "none shipped (display.top_patches)")
    assert {mark for mark, _ in panels.values()} == {"✓", "·"}
    assert lines[-1].strip().endswith(": usable")


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    for name in EXAMPLE_FILES:
        shutil.copy2(EXAMPLE / name, tmp_path / name)
    spec = tmp_path / "mynet.toml"
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new), encoding="utf-8")
    return spec


DIGEST = "f035b0a7dc7d629145345248ef2a034cc83a3b5df20e9fedaf713388c11600ec"


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            '"8", "9"]',
            '"8"]',
            "labels: the model returns (1, 10) for one image, not (1, 9) logits for the 9 labels",
        ),
        (
            f'sha256 = "{DIGEST}"',
            f'sha256 = "{"0" * 64}"',
            f"sha256: the weights' sha256 is {DIGEST}, not {'0' * 64}; refusing to load",
        ),
        ("[preprocess]", "[preprocess]\nresize_to = 32", "preprocess.resize_to: is not a spec key"),
        ('"mynet:build"', '"mynet:buld"', "entry_point: 'mynet' has no 'buld'"),
    ],
    ids=["labels-count", "sha256", "unknown-key", "entry-point"],
)
def test_check_model_refuses_a_broken_spec_in_one_line_naming_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, reason: str
) -> None:
    assert hashlib.sha256((EXAMPLE / "mynet.safetensors").read_bytes()).hexdigest() == DIGEST
    spec = broken_copy(tmp_path, old, new)
    assert main(["check-model", str(spec)]) == 1
    assert capsys.readouterr().out == f"{spec.resolve()}: {reason}\n"


def test_serve_model_adds_the_spec_to_the_models_the_workers_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra_models: None
) -> None:
    import uvicorn

    started: list[tuple[str, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append((app, options)))
    earlier = user_spec(tmp_path)
    monkeypatch.setenv("CONVLENS_MODELS", str(earlier))
    spec = EXAMPLE / "mynet.toml"
    assert main(["serve", "--model", str(spec), "--port", "8123"]) == 0
    ((app, options),) = started
    assert (app, options["factory"], options["port"]) == ("app.cli:build_app", True, 8123)
    assert get_settings().extra_model_paths == [earlier, spec.resolve()]  # what workers read


def test_serve_model_with_a_missing_spec_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extra_models: None,
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("server started"))
    monkeypatch.delenv("CONVLENS_MODELS", raising=False)
    missing = tmp_path / "nope.toml"
    assert main(["serve", "--model", str(missing)]) == 1
    assert one_line_error(capsys) == (
        f"convlens: error: --model {missing}: no such spec file or folder\n"
    )
