"""Model specs: one TOML file describes a model completely (docs/models/your-own.md).

A spec names the architecture's entry point (``module:callable``), its weights and labels, the
input it takes and how images are preprocessed for it, plus optional hints for the page (digit
canvas, preferred Grad-CAM layer, occlusion fill, translations). Everything model-specific lives
here, so no other code is keyed on a model id. Parsing is pure: nothing is imported or read
beyond the TOML file itself; ``SpecError`` messages name the file and the key.
"""

import importlib
import importlib.resources
import importlib.util
import math
import re
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core.preprocess import PreprocessSpec

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
ENTRY_POINT_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
INPUT_KINDS = ("photo", "digit")
MEMORY_FORMATS = ("contiguous", "channels_last")
"""How a model's conv weights and every batch it runs on are laid out. Contiguous (the default)
gives a user's model the very numbers its own code gives; channels-last is faster on CPU for the
bundled models (see `app.core.registry.LoadedModel.memory_format`) but rounds differently."""
LANGUAGES = ("en", "zh")


class SpecError(ValueError):
    """A spec file is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class FileRef:
    """A file beside the spec (``path`` absolute) or inside an installed package."""

    path: Path | None = None
    package: str | None = None
    package_path: str | None = None

    @property
    def suffix(self) -> str:
        name = self.path.name if self.path is not None else str(self.package_path)
        return Path(name).suffix.lower()

    def describe(self) -> str:
        return str(self.path) if self.path is not None else f"{self.package}:{self.package_path}"

    def read_bytes(self) -> bytes:
        """The file's bytes; OSError (or ModuleNotFoundError) when it cannot be read."""
        if self.path is not None:
            return self.path.read_bytes()
        return (importlib.resources.files(str(self.package)) / str(self.package_path)).read_bytes()


@dataclass(frozen=True)
class ModelSpec:
    """One model, as its spec file describes it."""

    id: str
    name: str
    description: str
    entry_point: str
    kwargs: dict[str, Any]
    weights: FileRef
    sha256: str | None
    labels: tuple[str, ...] | None
    labels_file: FileRef | None
    input_kind: Literal["photo", "digit"]
    preprocess: PreprocessSpec
    source: Path
    card: str | None = None
    gradcam_layer: str | None = None
    occlusion_fill: float = 0.5
    top_patches: Path | None = None
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    memory_format: Literal["contiguous", "channels_last"] = "contiguous"

    @property
    def folder(self) -> Path:
        return self.source.parent

    def text(self, key: Literal["name", "description"], language: str = "en") -> str:
        """The spec's name or description in ``language``, falling back to English."""
        return self.translations.get(language, {}).get(key) or getattr(self, key)


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces: errors (torch's, user code's) become one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _fail(path: Path, key: str, message: str) -> SpecError:
    return SpecError(f"{path}: {key}: {one_line(message)}")


def _get(
    table: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    path: Path,
    where: str,
    default: Any = ...,
) -> Any:
    """``table[key]`` checked against ``kind``; missing → ``default`` or a SpecError."""
    full = f"{where}{key}"
    if key not in table:
        if default is ...:
            raise _fail(path, full, "is required")
        return default
    value = table[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _fail(path, full, f"must be {_kind_name(kind)}, not {value!r}")
    if not isinstance(value, kind):
        raise _fail(path, full, f"must be {_kind_name(kind)}, not {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
        bool: "true or false",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _file_ref(value: Any, path: Path, key: str) -> FileRef:
    """``"file.ext"`` (relative to the spec) or ``{ package = "…", path = "…" }``."""
    if isinstance(value, str):
        relative = Path(value)
        if relative.is_absolute():
            return FileRef(path=relative)
        return FileRef(path=(path.parent / relative).resolve())
    if (
        isinstance(value, dict)
        and set(value) == {"package", "path"}
        and all(isinstance(v, str) and v for v in value.values())
    ):
        return FileRef(package=value["package"], package_path=value["path"])
    raise _fail(path, key, 'must be a file name or { package = "…", path = "…" }')


def _numbers(value: Any, count: int, path: Path, key: str, *, positive: bool = False) -> tuple:
    if not isinstance(value, list) or len(value) != count:
        raise _fail(path, key, f"must be a list of {count} numbers (one per input channel)")
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise _fail(path, key, f"must hold finite numbers, not {item!r}")
        if positive and item <= 0:
            raise _fail(path, key, "must hold positive numbers")
        numbers.append(float(item))
    return tuple(numbers)


def _preprocess(table: dict[str, Any], pre: dict[str, Any], path: Path) -> PreprocessSpec:
    channels = _get(table, "channels", int, path, "input.")
    height = _get(table, "height", int, path, "input.")
    width = _get(table, "width", int, path, "input.")
    if channels not in (1, 3):
        raise _fail(path, "input.channels", "must be 1 (grayscale) or 3 (RGB)")
    for key, size in (("height", height), ("width", width)):
        if not 1 <= size <= 4096:
            raise _fail(path, f"input.{key}", "must be between 1 and 4096")
    resize = _get(pre, "resize", int, path, "preprocess.", min(height, width))
    if resize < min(height, width):
        raise _fail(path, "preprocess.resize", "must be at least the input's shorter side")
    interpolation = _get(pre, "interpolation", str, path, "preprocess.", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise _fail(path, "preprocess.interpolation", f"must be one of {', '.join(INTERPOLATIONS)}")
    style = _get(pre, "style", str, path, "preprocess.", "crop")
    if style not in ("crop", "digit"):
        raise _fail(path, "preprocess.style", 'must be "crop" or "digit"')
    if style == "digit" and (channels, height, width) != (1, 28, 28):
        raise _fail(
            path, "preprocess.style", '"digit" makes 1×28×28 inputs: input must be 1, 28, 28'
        )
    return PreprocessSpec(
        style=style,
        channels=channels,
        height=height,
        width=width,
        mean=_numbers(pre.get("mean", [0.5] * channels), channels, path, "preprocess.mean"),
        std=_numbers(
            pre.get("std", [0.5] * channels), channels, path, "preprocess.std", positive=True
        ),
        resize=resize,
        interpolation=interpolation,
    )


_TOP_LEVEL = {
    "id",
    "name",
    "description",
    "entry_point",
    "kwargs",
    "weights",
    "sha256",
    "labels",
    "labels_file",
    "card",
    "input",
    "preprocess",
    "display",
    "i18n",
    "memory_format",
}
_TABLE_KEYS = {
    "input": {"kind", "channels", "height", "width"},
    "preprocess": {"style", "resize", "mean", "std", "interpolation"},
    "display": {"gradcam_layer", "occlusion_fill", "top_patches"},
}


def _check_keys(data: dict[str, Any], path: Path) -> None:
    """Unknown keys are typos more often than not: refuse them with the key's name."""
    for key in data:
        if key not in _TOP_LEVEL:
            raise _fail(path, key, "is not a spec key (see docs/models/your-own.md)")
    for table, allowed in _TABLE_KEYS.items():
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise _fail(path, table, "must be a table")
        for key in section:
            if key not in allowed:
                raise _fail(path, f"{table}.{key}", "is not a spec key")


def _translations(data: dict[str, Any], path: Path) -> dict[str, dict[str, str]]:
    i18n = _get(data, "i18n", dict, path, "", {})
    found: dict[str, dict[str, str]] = {}
    for language, texts in i18n.items():
        if language not in LANGUAGES or not isinstance(texts, dict):
            raise _fail(path, f"i18n.{language}", f"must be a table for one of {LANGUAGES}")
        for key, value in texts.items():
            if key not in ("name", "description") or not isinstance(value, str):
                raise _fail(path, f"i18n.{language}.{key}", "only name and description strings")
        found[language] = dict(texts)
    return found


def parse_spec(data: dict[str, Any], path: Path) -> ModelSpec:
    """A parsed TOML document → ModelSpec; SpecError names the file and key of any problem."""
    _check_keys(data, path)
    model_id = _get(data, "id", str, path, "")
    if not ID_PATTERN.fullmatch(model_id) or len(model_id) > 64:
        raise _fail(path, "id", "must match [a-z0-9][a-z0-9-]* (at most 64 characters)")
    entry_point = _get(data, "entry_point", str, path, "")
    if not ENTRY_POINT_PATTERN.fullmatch(entry_point):
        raise _fail(path, "entry_point", 'must be "module:callable", e.g. "mynet:build"')
    sha256 = _get(data, "sha256", str, path, "", None)
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise _fail(path, "sha256", "must be 64 lowercase hex digits")
    labels = _get(data, "labels", list, path, "", None)
    labels_file = data.get("labels_file")
    if (labels is None) == (labels_file is None):
        raise _fail(path, "labels", "give exactly one of labels or labels_file")
    if labels is not None and (not labels or not all(isinstance(v, str) for v in labels)):
        raise _fail(path, "labels", "must be a non-empty list of strings")
    weights = _file_ref(_get(data, "weights", (str, dict), path, ""), path, "weights")
    if weights.suffix not in (".safetensors", ".pt", ".pth"):
        raise _fail(path, "weights", "must be a .safetensors, .pt or .pth file")
    section = data.get("input", {})
    kind = _get(section, "kind", str, path, "input.", "photo")
    if kind not in INPUT_KINDS:
        raise _fail(path, "input.kind", f"must be one of {', '.join(INPUT_KINDS)}")
    display = data.get("display", {})
    fill = _get(display, "occlusion_fill", (int, float), path, "display.", 0.5)
    if not 0 <= fill <= 1:
        raise _fail(path, "display.occlusion_fill", "must be a pixel value between 0 and 1")
    card = _get(data, "card", str, path, "", None)
    top_patches = _get(display, "top_patches", str, path, "display.", None)
    memory_format = _get(data, "memory_format", str, path, "", "contiguous")
    if memory_format not in MEMORY_FORMATS:
        raise _fail(path, "memory_format", f"must be one of {', '.join(MEMORY_FORMATS)}")
    return ModelSpec(
        id=model_id,
        name=_get(data, "name", str, path, ""),
        description=_get(data, "description", str, path, ""),
        entry_point=entry_point,
        kwargs=dict(_get(data, "kwargs", dict, path, "", {})),
        weights=weights,
        sha256=sha256,
        labels=tuple(labels) if labels is not None else None,
        labels_file=_file_ref(labels_file, path, "labels_file") if labels_file else None,
        input_kind=kind,
        preprocess=_preprocess(section, data.get("preprocess", {}), path),
        source=path,
        card=card,
        gradcam_layer=_get(display, "gradcam_layer", str, path, "display.", None),
        occlusion_fill=float(fill),
        top_patches=(path.parent / top_patches).resolve() if top_patches else None,
        translations=_translations(data, path),
        memory_format=memory_format,
    )


def read_spec(path: Path) -> ModelSpec:
    """Read and parse one spec file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"{path}: cannot read: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from error
    return parse_spec(data, path.resolve())


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """Spec files named by ``paths``: a file as is, a folder's ``*.toml`` files in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob("*.toml")))
        elif path.is_file():
            found.append(path)
        else:
            raise SpecError(f"{path}: no such spec file or folder")
    return found


def read_specs(paths: Iterable[Path]) -> list[ModelSpec]:
    """Every spec under ``paths``; ids must be unique."""
    specs: list[ModelSpec] = []
    seen: dict[str, Path] = {}
    for file in spec_files(paths):
        spec = read_spec(file)
        if spec.id in seen:
            raise _fail(file, "id", f"{spec.id!r} is already used by {seen[spec.id]}")
        seen[spec.id] = file
        specs.append(spec)
    return specs


def resolve_entry_point(spec: ModelSpec) -> Callable[..., Any]:
    """The spec's ``module:callable``, imported from the spec's folder first, else installed.

    A module file beside the spec is loaded under a name private to that folder, so two specs
    with a ``model.py`` each never share a module; its folder is on ``sys.path`` while it loads,
    for its own sibling imports.
    """
    module_name, _, attribute = spec.entry_point.partition(":")
    local = spec.folder.joinpath(*module_name.split(".")).with_suffix(".py")
    try:
        if local.is_file():
            module = _import_local(local, spec)
        else:
            sys.path.insert(0, str(spec.folder))  # a package folder beside the spec
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(str(spec.folder))
    except Exception as error:  # any import-time failure of user code is a spec problem
        raise _fail(
            spec.source,
            "entry_point",
            f"cannot import {module_name!r}: {type(error).__name__}: {error}",
        ) from error
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise _fail(spec.source, "entry_point", f"{module_name!r} has no {attribute!r}")
    if not callable(target):
        raise _fail(spec.source, "entry_point", f"{spec.entry_point!r} is not callable")
    return target


def _import_local(file: Path, spec: ModelSpec) -> Any:
    private = f"convlens_specs.{abs(hash(str(file.parent)))}.{file.stem}"
    if private in sys.modules:
        return sys.modules[private]
    module_spec = importlib.util.spec_from_file_location(private, file)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(file.parent))
    try:
        sys.modules[private] = module
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(private, None)
        raise
    finally:
        sys.path.remove(str(file.parent))
    return module
