"""A model's layer table on disk, so a restart does not trace receptive fields again.

Describing a model (``registry.describe_layers``) runs the receptive-field trace on meta tensors,
which loads torch's meta kernels (seconds, once per process) and walks every op. The result only
depends on the spec, the weights' digest, the program's layers and this code, so it is stored as
JSON under a key made of all of those and read back on the next start. A file that does not
parse, or that was written for anything else, is ignored (and then rewritten).
"""

import hashlib
import json
import logging
import os
from dataclasses import asdict, fields
from functools import cache
from pathlib import Path
from typing import Any

from app.core.layer_graph import LayerInput
from app.core.layer_program import LayerProgram
from app.core.receptive_field import LayerReceptiveField, ReceptiveField

logger = logging.getLogger("convlens.models")

FORMAT = "convlens-layer-table/1"
_SOURCES = ("receptive_field", "layer_kinds.py", "layer_trace.py", "layer_graph.py", "registry.py")


@cache
def code_digest() -> str:
    """Digest of the code that computes layer tables: any change to it makes new tables."""
    core = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = core / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(file.read_bytes())
    return digest.hexdigest()


def table_key(spec_bytes: bytes, weights_sha256: str, program: LayerProgram, code: str) -> str:
    """Digest of everything a layer table depends on."""
    digest = hashlib.sha256()
    for part in (FORMAT, code, weights_sha256, program.method):
        digest.update(part.encode() + b"\0")
    digest.update(spec_bytes)
    for layer in program.layers:
        digest.update(f"{layer.name}|{layer.kind}|{layer.type}|{layer.point}\0".encode())
    return digest.hexdigest()


def _field(data: dict[str, Any] | None) -> ReceptiveField | None:
    if data is None:
        return None
    known = {f.name for f in fields(ReceptiveField)}
    values = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in data.items()
        if key in known
    }
    return ReceptiveField(**values)


def save_table(path: Path, key: str, layers: list[Any], channels_last: frozenset[int]) -> None:
    """Write the table atomically (a crash mid-write leaves the old file or none)."""
    payload = {
        "format": FORMAT,
        "key": key,
        "channels_last": sorted(channels_last),
        "layers": [asdict(layer) for layer in layers],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(payload), encoding="utf-8")
        partial.replace(path)
    except OSError as error:  # a read-only data folder only costs the next start some time
        logger.warning("layer table %s not written: %s", path, error)


def load_table(path: Path, key: str, layer_type: type) -> tuple[list[Any], frozenset[int]] | None:
    """The stored (layers, channels-last points) for ``key``, or None."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT or payload.get("key") != key:
            return None
        layers = []
        for item in payload["layers"]:
            field = item["receptive_field"]
            source = item["input"]
            layers.append(
                layer_type(
                    **{
                        **item,
                        "output_shape": tuple(item["output_shape"]),
                        "receptive_field": LayerReceptiveField(
                            field["name"], _field(field["rf"]), field["diagnostic"]
                        ),
                        "input": None
                        if source is None
                        else LayerInput(source["source"], tuple(source["padding"])),
                    }
                )
            )
        return layers, frozenset(payload["channels_last"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        if not isinstance(error, FileNotFoundError):
            logger.warning("layer table %s ignored: %s", path, error)
        return None
