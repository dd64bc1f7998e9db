"""Model specs → loaded, checked, described models.

Only models described by a spec file (``app.core.model_spec``) are loaded: the bundled ones in
``models/*.toml`` and whatever the operator names with ``--model`` / ``CONVLENS_MODELS``. Weights
are read once as bytes, checked against the spec's sha256 when it gives one, then parsed as
safetensors or as a ``weights_only`` state dict — never unpickled — and loaded strictly. Every model
gets its layer table (output shape, parameters, receptive field) at load time.
"""

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from app.core.layer_graph import LayerInput, layer_inputs
from app.core.layer_program import LayerProgram, program_of
from app.core.layer_table import code_digest, load_table, save_table, table_key
from app.core.model_spec import (
    ModelSpec,
    SpecError,
    one_line,
    read_specs,
    resolve_entry_point,
)
from app.core.receptive_field import LayerReceptiveField
from app.core.receptive_field.tracer import trace_program


class ModelLoadError(RuntimeError):
    """A spec, its weights or its architecture are unusable; the message says which and why."""


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
    module: str | None = None
    channels_last: bool = False


@dataclass
class LoadedModel:
    """A model ready for inference, with its labels and layer table.

    ``weights_sha256`` is the digest of the weight bytes actually loaded (the spec's sha256 when it
    gives one): caches and shipped precomputations are keyed by it. ``memory_format`` is how the
    module's conv weights and every batch it is fed are laid out (the spec's, `MEMORY_FORMATS`).
    """

    spec: ModelSpec
    module: nn.Module
    labels: list[str]
    device: torch.device
    layers: list[LayerInfo]
    weights_sha256: str
    program: LayerProgram
    memory_format: torch.memory_format = torch.contiguous_format
    layer_index: dict[str, LayerInfo] = field(init=False)

    def __post_init__(self) -> None:
        self.layer_index = {layer.name: layer for layer in self.layers}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        p = self.spec.preprocess
        return (p.channels, p.height, p.width)

    def module_of(self, layer: str) -> nn.Module | None:
        """The module that computes ``layer`` (None for a functional layer such as ``F.relu``)."""
        info = self.layer_index.get(layer)
        if info is None or info.module is None:
            return None
        return self.module.get_submodule(info.module)

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images on the model's device, in its memory format."""
        return images.to(self.device, memory_format=self.memory_format)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

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


MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
"""A spec's ``memory_format``, as torch names it.

Channels-last, measured side by side (one thread, medians of interleaved rounds, ÷ the contiguous
forward alone): forward alone Lite0 0.90×, Lite1 0.96×, LeNet-5 on 28² 0.89×; `analyze_batch`
Lite0 1.40× against 1.56×, Lite1 1.50× against 1.70×, LeNet-5 2.52× against 2.90×; a resumed
layer recompute Lite0 0.45× against 0.46×, Lite1 0.46× against 0.52×. So the bundled specs ask
for it. It is not the default: its sums round differently (logits within ~1e-6), and a user's
model should give the numbers its own code gives unless its spec asks otherwise. A contiguous
batch gives the same numbers to the bit (the first conv converts it); `LoadedModel.batch` saves
that copy.
"""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _problem(spec: ModelSpec, key: str, message: str) -> ModelLoadError:
    return ModelLoadError(f"{spec.source}: {key}: {one_line(message)}")


def read_weight_bytes(spec: ModelSpec) -> tuple[bytes, str]:
    """The weight file's bytes and sha256, verified against the spec's sha256 when given."""
    try:
        data = spec.weights.read_bytes()
    except (OSError, ModuleNotFoundError) as error:
        raise _problem(
            spec, "weights", f"cannot read {spec.weights.describe()}: {error}"
        ) from error
    digest = sha256_hex(data)
    if spec.sha256 is not None and digest != spec.sha256:
        raise _problem(
            spec, "sha256", f"the weights' sha256 is {digest}, not {spec.sha256}; refusing to load"
        )
    return data, digest


def parse_state_dict(spec: ModelSpec, data: bytes) -> dict[str, torch.Tensor]:
    """Parse verified weight bytes without ever unpickling arbitrary objects."""
    if spec.weights.suffix == ".safetensors":
        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError) as error:
            raise _problem(spec, "weights", f"not a valid safetensors file ({error})") from error
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for bad or unsafe pickles
        raise _problem(
            spec, "weights", f"not a plain tensor state dict (read with weights_only=True: {error})"
        ) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # the common {"state_dict": …} checkpoint layout
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _problem(spec, "weights", "the file is not a tensor state dict")
    return state


def read_labels(spec: ModelSpec) -> list[str]:
    """Class names: inline, a text file (one per line) or JSON (a list, or {"0": name, …})."""
    if spec.labels is not None:
        return list(spec.labels)
    assert spec.labels_file is not None
    try:
        text = spec.labels_file.read_bytes().decode("utf-8")
    except (OSError, ModuleNotFoundError, UnicodeDecodeError) as error:
        raise _problem(spec, "labels_file", f"cannot read it: {error}") from error
    if spec.labels_file.suffix == ".json":
        try:
            loaded = json.loads(text)
            values = (
                [loaded[str(i)] for i in range(len(loaded))] if isinstance(loaded, dict) else loaded
            )
        except (ValueError, KeyError) as error:
            raise _problem(spec, "labels_file", f"not a list or index mapping: {error}") from error
    else:
        values = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _problem(spec, "labels_file", "must hold one string label per class")
    return values


def build_module(spec: ModelSpec) -> nn.Module:
    """Call the spec's entry point with its kwargs; the result must be an ``nn.Module``."""
    try:
        build = resolve_entry_point(spec)
    except SpecError as error:
        raise ModelLoadError(str(error)) from error
    try:
        module = build(**spec.kwargs)
    except Exception as error:
        raise _problem(
            spec,
            "entry_point",
            f"{spec.entry_point}(**kwargs) raised {type(error).__name__}: {error}",
        ) from error
    if not isinstance(module, nn.Module):
        raise _problem(spec, "entry_point", f"returned {type(module).__name__}, not an nn.Module")
    return module


def own_params(module: nn.Module) -> int:
    """Parameters a layer owns (a block counts everything inside it)."""
    return sum(p.numel() for p in module.parameters())


def _probe_shapes(program: LayerProgram, input_shape: tuple[int, int, int]) -> dict[int, tuple]:
    """Output shape at every point, from one real forward of zeros."""
    device = next(program.model.parameters()).device
    shapes: dict[int, tuple[int, ...]] = {}

    def sink(point: int, value: torch.Tensor) -> None:
        shapes.setdefault(point, tuple(value.shape))

    with torch.inference_mode():
        program.run(torch.zeros((1, *input_shape), device=device), sink)
    return shapes


def describe_layers(program: LayerProgram, input_shape: tuple[int, int, int]) -> list[LayerInfo]:
    """Layer table in execution order: shapes, parameters, receptive fields, inputs.

    Also marks the program's channels-last points (4-d values whose traced spatial axes are 1 and
    2), so captures store them channels-first.
    """
    dtype = next((p.dtype for p in program.model.parameters() if p.is_floating_point()), None)
    traces, stopped = trace_program(program.run, input_shape, dtype or torch.float32)
    shapes = _probe_shapes(program, input_shape)
    program.channels_last = frozenset(
        point
        for point, trace in traces.items()
        if len(trace.shape) == 4 and trace.spatial_dims == (1, 2)
    )
    modules = dict(program.model.named_modules())
    hooked_inputs = layer_inputs(program.model, input_shape) if program.method == "hooks" else {}
    missing = f"forward on shapes only stopped before this layer: {stopped}"
    layers = []
    for layer in program.layers:
        if layer.point not in shapes:
            continue  # did not run for this input (a branch not taken)
        shape = program.shown_shape(layer.point, shapes[layer.point][1:])
        trace = traces.get(layer.point)
        field = (
            LayerReceptiveField(layer.name, trace.field.rf, trace.field.diagnostic)
            if trace is not None
            else LayerReceptiveField(layer.name, None, missing)
        )
        if program.method == "hooks":
            source = hooked_inputs.get(layer.name)
        elif layer.source is not None:
            source = LayerInput(layer.source, layer.padding)
        else:
            source = None
        layers.append(
            LayerInfo(
                name=layer.name,
                kind=layer.kind,
                type=layer.type,
                output_shape=shape,
                params=own_params(modules[layer.module]) if layer.module else 0,
                receptive_field=field,
                input=source,
                module=layer.module,
                channels_last=layer.point in program.channels_last,
            )
        )
    order = {point: i for i, point in enumerate(shapes)}
    layers.sort(key=lambda info: order[program.by_name[info.name].point])
    return layers


def _check_output(spec: ModelSpec, module: nn.Module, num_labels: int) -> None:
    """One probe forward: the model must map (1, C, H, W) to (1, K) logits, K = number of labels."""
    p = spec.preprocess
    device = next(module.parameters()).device
    try:
        with torch.inference_mode():
            output = module(torch.zeros((1, p.channels, p.height, p.width), device=device))
    except Exception as error:
        raise _problem(
            spec,
            "input",
            f"a (1, {p.channels}, {p.height}, {p.width}) batch fails in forward: "
            f"{type(error).__name__}: {error}",
        ) from error
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (1, num_labels):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise _problem(
            spec,
            "labels",
            f"the model returns {shape} for one image, not (1, {num_labels}) logits "
            f"for the {num_labels} labels",
        )


def build_model(
    spec: ModelSpec,
    state_dict: dict[str, torch.Tensor],
    device: torch.device,
    digest: str,
    table_dir: Path | None = None,
) -> LoadedModel:
    """Instantiate the architecture, load weights strictly, and describe its layers.

    ``table_dir``: where layer tables are kept between starts (``layer_table``); None traces
    every time.
    """
    module = build_module(spec)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise _problem(spec, "weights", f"do not fit the architecture: {error}") from error
    if not any(True for _ in module.parameters()):
        raise _problem(spec, "entry_point", "the model has no parameters")
    memory_format = MEMORY_FORMATS[spec.memory_format]
    module.eval().requires_grad_(False).to(device, memory_format=memory_format)
    labels = read_labels(spec)
    p = spec.preprocess
    shape = (p.channels, p.height, p.width)
    program = program_of(module)
    stored, path, key = None, None, ""
    if table_dir is not None:  # checked and described on an earlier start: reuse that
        identity = spec.source.read_bytes() + "\n".join(labels).encode()
        key = table_key(identity, digest, program, code_digest())
        path = table_dir / f"{spec.id}.json"
        stored = load_table(path, key, LayerInfo)
    if stored is None:
        _check_output(spec, module, len(labels))
        layers = describe_layers(program, shape)
        if path is not None:
            save_table(path, key, layers, program.channels_last)
    else:
        layers, program.channels_last = stored
    if spec.gradcam_layer is not None and spec.gradcam_layer not in {x.name for x in layers}:
        raise _problem(spec, "display.gradcam_layer", f"no layer is named {spec.gradcam_layer!r}")
    return LoadedModel(
        spec=spec,
        module=module,
        labels=labels,
        device=device,
        layers=layers,
        weights_sha256=digest,
        program=program,
        memory_format=memory_format,
    )


def load_model(spec: ModelSpec, device: torch.device, table_dir: Path | None = None) -> LoadedModel:
    """Read, verify and build the model one spec describes."""
    data, digest = read_weight_bytes(spec)
    return build_model(spec, parse_state_dict(spec, data), device, digest, table_dir)


def spec_paths(models_dir: Path, extra: Iterable[Path] = ()) -> list[Path]:
    """The bundled spec folder followed by the operator's own specs (files or folders)."""
    return [models_dir, *extra]


def read_model_specs(models_dir: Path, extra: Iterable[Path] = ()) -> list[ModelSpec]:
    """Every spec: bundled first, then the operator's; ModelLoadError on any bad one."""
    try:
        return read_specs(spec_paths(models_dir, extra))
    except SpecError as error:
        raise ModelLoadError(str(error)) from error


class ModelRegistry:
    """All spec'd models, loaded once at start-up and looked up by id (never by path)."""

    def __init__(self, models: list[LoadedModel]) -> None:
        self._models = {model.spec.id: model for model in models}

    @classmethod
    def from_specs(
        cls,
        models_dir: Path,
        device: torch.device,
        extra: Iterable[Path] = (),
        table_dir: Path | None = None,
    ) -> "ModelRegistry":
        specs = read_model_specs(models_dir, extra)
        return cls([load_model(spec, device, table_dir) for spec in specs])

    def get(self, model_id: str) -> LoadedModel | None:
        return self._models.get(model_id)

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
