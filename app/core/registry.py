"""The model manifest → loaded, checked, described models.

Only models listed in `models/manifest.json` can be loaded. Weights are read once as bytes, checked
against the manifest's sha256, then parsed as safetensors or as a `weights_only` state dict — never
unpickled. Every model gets its layer table (output shape, parameters, receptive field) at load time.
"""

import hashlib
import importlib.resources
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from app.core.architectures.efficientnet_lite import build_efficientnet_lite0
from app.core.architectures.lenet5 import LeNet5
from app.core.capture import ActivationCapture, layer_kind, visible_layers
from app.core.layer_graph import LayerInput, layer_inputs
from app.core.preprocess import PreprocessSpec
from app.core.receptive_field import LayerReceptiveField, compute_receptive_fields

ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "lenet5": lambda num_classes: LeNet5(),
    "efficientnet_lite0": lambda num_classes: build_efficientnet_lite0(num_classes=num_classes),
}


class ModelLoadError(RuntimeError):
    """A manifest entry or its weights are unusable; the message says which and why."""


@dataclass(frozen=True)
class LayerInfo:
    """One visible layer: what the architecture strip and the API show."""

    name: str
    kind: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    receptive_field: LayerReceptiveField
    input: LayerInput | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A manifest entry."""

    id: str
    name: str
    description: str
    architecture: str
    num_classes: int
    weights: dict[str, Any]
    labels: dict[str, Any]
    preprocess: PreprocessSpec
    card: str | None = None


@dataclass
class LoadedModel:
    """A model ready for inference, with its labels and layer table."""

    spec: ModelSpec
    module: nn.Module
    labels: list[str]
    device: torch.device
    layers: list[LayerInfo]
    layer_index: dict[str, LayerInfo] = field(init=False)

    def __post_init__(self) -> None:
        self.layer_index = {layer.name: layer for layer in self.layers}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        p = self.spec.preprocess
        return (p.channels, p.height, p.width)

    @property
    def total_params(self) -> int:
        return sum(parameter.numel() for parameter in self.module.parameters())


def select_device(preference: str) -> torch.device:
    """`auto` → CUDA when available, else CPU; `cuda` without a GPU is a configuration error."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("CONVLENS_DEVICE=cuda but no CUDA device is available")
    if preference in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse_spec(entry: dict[str, Any]) -> ModelSpec:
    try:
        pre = entry["preprocessing"]
        preprocess = PreprocessSpec(
            kind=pre["kind"],
            channels=int(pre["channels"]),
            height=int(pre["height"]),
            width=int(pre["width"]),
            mean=tuple(float(v) for v in pre["mean"]),
            std=tuple(float(v) for v in pre["std"]),
            resize=pre.get("resize"),
            interpolation=pre.get("interpolation", "bicubic"),
        )
        spec = ModelSpec(
            id=entry["id"],
            name=entry["name"],
            description=entry["description"],
            architecture=entry["architecture"],
            num_classes=int(entry["num_classes"]),
            weights=dict(entry["weights"]),
            labels=dict(entry["labels"]),
            preprocess=preprocess,
            card=entry.get("card"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(
            f"malformed manifest entry {entry.get('id', '?')!r}: {error}"
        ) from error
    if spec.architecture not in ARCHITECTURES:
        raise ModelLoadError(f"model {spec.id!r}: unknown architecture {spec.architecture!r}")
    return spec


def read_manifest(models_dir: Path) -> list[ModelSpec]:
    """Parse `models_dir/manifest.json` into specs (no weights are read)."""
    path = models_dir / "manifest.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"cannot read model manifest {path}: {error}") from error
    return [_parse_spec(entry) for entry in entries]


def _package_file(package: str, relative: str) -> bytes:
    try:
        return (importlib.resources.files(package) / relative).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as error:
        raise ModelLoadError(f"weights not found in package {package!r} at {relative!r}") from error


def read_weight_bytes(spec: ModelSpec, models_dir: Path) -> bytes:
    """The weight file's bytes, verified against the manifest's sha256."""
    weights = spec.weights
    if weights.get("source") == "package":
        data = _package_file(weights["package"], weights["path"])
    else:
        relative = Path(weights["path"])
        if relative.is_absolute() or ".." in relative.parts:
            raise ModelLoadError(f"model {spec.id!r}: weights path must stay inside {models_dir}")
        try:
            data = (models_dir / relative).read_bytes()
        except OSError as error:
            raise ModelLoadError(f"model {spec.id!r}: cannot read weights: {error}") from error
    digest = sha256_hex(data)
    if digest != weights.get("sha256"):
        raise ModelLoadError(
            f"model {spec.id!r}: weights sha256 {digest} does not match the manifest's "
            f"{weights.get('sha256')}; refusing to load"
        )
    return data


def parse_state_dict(spec: ModelSpec, data: bytes) -> dict[str, torch.Tensor]:
    """Parse verified weight bytes without ever unpickling arbitrary objects."""
    fmt = spec.weights.get("format")
    if fmt == "safetensors":
        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError) as error:
            raise ModelLoadError(
                f"model {spec.id!r}: weights are not a valid safetensors file ({error})"
            ) from error
    if fmt == "torch-state-dict":
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for bad or unsafe pickles
            raise ModelLoadError(
                f"model {spec.id!r}: weights are not a plain tensor state dict ({error})"
            ) from error
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise ModelLoadError(f"model {spec.id!r}: weights file is not a tensor state dict")
        return state
    raise ModelLoadError(f"model {spec.id!r}: unsupported weights format {fmt!r}")


def read_labels(spec: ModelSpec) -> list[str]:
    labels = spec.labels
    if labels.get("source") == "inline":
        values = list(labels["values"])
    else:
        loaded = json.loads(_package_file(labels["package"], labels["path"]))
        # A list in class order, or a {"0": name, …} mapping keyed by class index.
        values = (
            [loaded[str(i)] for i in range(len(loaded))] if isinstance(loaded, dict) else loaded
        )
    if len(values) != spec.num_classes or not all(isinstance(v, str) for v in values):
        raise ModelLoadError(f"model {spec.id!r}: expected {spec.num_classes} string labels")
    return values


def own_params(module: nn.Module) -> int:
    """Parameters a layer owns (a block counts everything inside it)."""
    return sum(p.numel() for p in module.parameters())


def describe_layers(module: nn.Module, input_shape: tuple[int, int, int]) -> list[LayerInfo]:
    """Layer table in execution order, from one probe forward and the receptive-field trace."""
    device = next(module.parameters()).device
    probe = torch.zeros((1, *input_shape), device=device)
    with torch.inference_mode(), ActivationCapture(module) as capture:
        capture.run(probe)
    fields = compute_receptive_fields(module, input_shape)
    inputs = layer_inputs(module, input_shape)
    modules = visible_layers(module)
    return [
        LayerInfo(
            name=name,
            kind=layer_kind(modules[name]) or "layer",
            type=type(modules[name]).__name__,
            output_shape=tuple(capture.activations[name].shape[1:]),
            params=own_params(modules[name]),
            receptive_field=fields[name],
            input=inputs.get(name),
        )
        for name in capture.order
    ]


def build_model(
    spec: ModelSpec, state_dict: dict[str, torch.Tensor], device: torch.device
) -> LoadedModel:
    """Instantiate the architecture, load weights strictly, and describe its layers."""
    module = ARCHITECTURES[spec.architecture](spec.num_classes)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"model {spec.id!r}: weights do not fit the architecture: {error}"
        ) from error
    module.eval().requires_grad_(False).to(device)
    p = spec.preprocess
    layers = describe_layers(module, (p.channels, p.height, p.width))
    return LoadedModel(
        spec=spec, module=module, labels=read_labels(spec), device=device, layers=layers
    )


def load_model(spec: ModelSpec, models_dir: Path, device: torch.device) -> LoadedModel:
    """Read, verify and build one manifest model."""
    return build_model(spec, parse_state_dict(spec, read_weight_bytes(spec, models_dir)), device)


class ModelRegistry:
    """All manifest models, loaded once at start-up and looked up by id (never by path)."""

    def __init__(self, models: list[LoadedModel]) -> None:
        self._models = {model.spec.id: model for model in models}

    @classmethod
    def from_manifest(cls, models_dir: Path, device: torch.device) -> "ModelRegistry":
        return cls([load_model(spec, models_dir, device) for spec in read_manifest(models_dir)])

    def get(self, model_id: str) -> LoadedModel | None:
        return self._models.get(model_id)

    def __iter__(self):
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
