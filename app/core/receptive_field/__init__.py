"""Receptive fields: which input pixels each unit of each layer sees.

``geometry`` holds the pure per-layer math (size, jump, start) and unit boxes, ``ops`` the rule
for each torch op, ``tracer`` the one-forward graph walk that gives every module its field.
"""

from app.core.receptive_field.geometry import (
    INPUT_RECEPTIVE_FIELD,
    Box,
    ReceptiveField,
    clip_box,
    conv_receptive_field,
    global_receptive_field,
    pad_receptive_field,
    pool_receptive_field,
    receptive_field_box,
    receptive_field_json,
    union_receptive_field,
)
from app.core.receptive_field.tracer import LayerReceptiveField, compute_receptive_fields

__all__ = [
    "INPUT_RECEPTIVE_FIELD",
    "Box",
    "LayerReceptiveField",
    "ReceptiveField",
    "clip_box",
    "compute_receptive_fields",
    "conv_receptive_field",
    "global_receptive_field",
    "pad_receptive_field",
    "pool_receptive_field",
    "receptive_field_box",
    "receptive_field_json",
    "union_receptive_field",
]
