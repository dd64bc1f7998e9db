"""Write a zoo model as a convlens model spec: its weights file and a TOML file next to it.

The TOML is formatted by hand (``tomllib`` only reads); ``toml_value`` escapes strings as TOML basic
strings, so any description or label round-trips.
"""

import hashlib
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.zoo import ZOO

WEIGHTS_SUFFIXES = {"safetensors": ".safetensors", "pt": ".pt"}
"""Weights formats ``write_spec`` can save, with the file suffix of each."""

MEAN_STD = 0.5
"""Every zoo spec normalizes each channel as ``(x - 0.5) / 0.5``, i.e. to [-1, 1]."""

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

TomlValue = str | int | float | bool | list["TomlValue"] | dict[str, "TomlValue"]


def toml_value(value: TomlValue) -> str:
    """``value`` as a TOML value: a basic string, number, boolean, array, or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_escape(character) for character in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    pairs = ", ".join(f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items())
    return "{ " + pairs + " }" if pairs else "{}"


def toml_key(key: str) -> str:
    """``key`` bare when TOML allows it (letters, digits, ``_``, ``-``), else as a quoted string."""
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)


def _escape(character: str) -> str:
    if character in _ESCAPES:
        return _ESCAPES[character]
    if ord(character) < 0x20 or ord(character) == 0x7F:
        return f"\\u{ord(character):04X}"
    return character


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_spec(model_id: str, folder: Path, *, weights_format: str = "safetensors") -> Path:
    """Save zoo model ``model_id``'s weights and ``<folder>/<model_id>.toml``; return the TOML path.

    Args:
        model_id: A key of ``ZOO``, e.g. ``"zoo-resnet"``.
        folder: Where both files go (created if missing); the spec names its weights relative to it.
        weights_format: ``"safetensors"`` (saved by ``safetensors.torch.save_file``) or ``"pt"``
            (``torch.save``).
    """
    if weights_format not in WEIGHTS_SUFFIXES:
        raise ValueError(f"weights_format must be one of {sorted(WEIGHTS_SUFFIXES)}")
    entry = ZOO[model_id]
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{model_id}{WEIGHTS_SUFFIXES[weights_format]}"
    # safetensors refuses views and tensors sharing storage: each entry gets a contiguous copy.
    state = entry.build().state_dict()
    state = {name: tensor.detach().clone().contiguous() for name, tensor in state.items()}
    if weights_format == "safetensors":
        save_file(state, weights)
    else:
        torch.save(state, weights)
    channels, height, width = entry.input_shape
    num_classes = entry.kwargs["num_classes"]
    fields: dict[str, TomlValue] = {
        "id": model_id,
        "name": entry.name,
        "description": entry.description,
        "entry_point": entry.entry_point,
        "kwargs": dict(entry.kwargs),
        "weights": weights.name,
        "sha256": sha256_file(weights),
        "labels": [f"class {index}" for index in range(num_classes)],
    }
    tables: dict[str, dict[str, TomlValue]] = {
        "input": {"kind": "photo", "channels": channels, "height": height, "width": width},
        "preprocess": {
            "resize": height,
            "mean": [MEAN_STD] * channels,
            "std": [MEAN_STD] * channels,
            "interpolation": "bilinear",
        },
    }
    lines = [f"{toml_key(key)} = {toml_value(value)}" for key, value in fields.items()]
    for table, values in tables.items():
        lines += ["", f"[{toml_key(table)}]"]
        lines += [f"{toml_key(key)} = {toml_value(value)}" for key, value in values.items()]
    spec = folder / f"{model_id}.toml"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return spec
