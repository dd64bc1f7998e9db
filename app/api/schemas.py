"""Pydantic response models: the OpenAPI contract of API v1."""

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ErrorBody(BaseModel):
    code: str = Field(examples=["model_not_found"])
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class InputShape(BaseModel):
    channels: int
    height: int
    width: int


class ModelSummary(BaseModel):
    id: str
    name: str
    description: str
    num_classes: int
    input: InputShape
    input_kind: Literal["photo", "digit"] = Field(
        description="what the model reads: photos, or digits (the page offers a draw canvas)"
    )
    i18n: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="the spec's translated name/description by language, e.g. {'zh': {…}}",
    )


class ModelList(BaseModel):
    models: list[ModelSummary]


class ReceptiveFieldOut(BaseModel):
    size: list[float] = Field(description="RF size [h, w] in input pixels")
    jump: list[float] = Field(
        description="effective stride [h, w]: input pixels between adjacent units"
    )
    start: list[float] = Field(description="input-pixel centre [h, w] of unit (0, 0)")
    is_global: bool = Field(
        False,
        description="every unit sees the same region: what the units of the map it reads saw "
        "together (the whole image, or less where an unpadded stride never reached an edge)",
    )
    gated: bool = Field(
        False,
        description="besides its own box, each unit is scaled by a gate computed from everything "
        "the layer's input saw (squeeze-excitation, a norm over the image)",
    )
    seen: "BoxOut | None" = Field(
        None, description="the input pixels the units see together, when less than the image"
    )
    diagnostic: str | None = Field(None, description="why the RF could not be computed, if so")


class LayerOut(BaseModel):
    name: str
    type: str = Field(description="module class, e.g. Conv2d")
    kind: str = Field(
        description="conv, depthwise_conv, batchnorm, activation, pool, linear or block"
    )
    output_shape: list[int]
    params: int
    receptive_field: ReceptiveFieldOut
    input_layer: str | None = Field(
        None,
        description="the layer whose output this layer reads ('input': the normalized model "
        "input); null when that input is made outside any layer",
    )
    input_padding: list[int] = Field(
        [0, 0, 0, 0],
        description="zero padding [top, left, bottom, right] added between input_layer and this "
        "layer by hidden pad modules (on top of a conv's own padding)",
    )


class Preprocessing(BaseModel):
    style: Literal["crop", "digit"] = Field(
        description="crop: shorter side resized, centre crop; digit: MNIST-style centring"
    )
    mean: list[float]
    std: list[float]
    resize: int | None
    interpolation: str


class ModelDetail(ModelSummary):
    architecture: str = Field(description="the spec's entry point, module:callable")
    total_params: int
    preprocessing: Preprocessing
    labels: list[str]
    card: str | None = None
    top_patches: bool = Field(
        False, description="top-activating input patches are shipped for this model's weights"
    )
    occlusion_fill: float = Field(
        description="the pixel value (0–1) an occluding patch is filled with (the spec's)"
    )
    layers: list[LayerOut]


class PredictionOut(BaseModel):
    index: int
    label: str
    probability: float


class LayerStatsOut(BaseModel):
    name: str
    type: str = Field(description="layer kind (conv, batchnorm, activation, pool, linear, block)")
    shape: list[int] = Field(description="[C, H, W] for feature maps, [N] for vectors")
    min: float
    max: float
    mean: float
    zero_fraction: float
    atlas_url: str
    url: str = Field(description="atlas layout and per-channel ranges")


class AnalysisOut(BaseModel):
    analysis_id: str
    model_id: str
    cached: bool = Field(description="served from the cache without a new forward pass")
    input_url: str = Field(description="PNG of the exact model input (after resize/crop)")
    predictions: list[PredictionOut]
    logits: list[float]
    layers: list[LayerStatsOut]


class AtlasOut(BaseModel):
    count: int
    cols: int
    rows: int
    tile_height: int
    tile_width: int
    gap: int
    height: int
    width: int


class LayerMapsOut(BaseModel):
    analysis_id: str
    layer: str
    shape: list[int]
    scaling: str = Field(
        description="'channel': each tile scaled by its own min/max; 'layer': one tile"
    )
    minimums: list[float]
    maximums: list[float]
    atlas: AtlasOut
    atlas_url: str


class ChannelOut(BaseModel):
    analysis_id: str
    layer: str
    channel: int
    shape: list[int]
    min: float
    max: float
    values: list[list[float]] = Field(description="exact float32 values, row-major")


class PatchOut(BaseModel):
    analysis_id: str
    layer: str
    top: int
    left: int
    height: int
    width: int
    channels: list[int]
    values: list[list[list[float | None]]] = Field(
        description="[channel][row][column] exact float32 values; null outside the feature map"
    )


class FiltersOut(BaseModel):
    model_id: str
    layer: str
    shape: list[int] = Field(description="[O, I/groups, kh, kw]")
    groups: int
    depthwise: bool
    rgb: bool
    stride: list[int]
    padding: list[int] | str
    dilation: list[int]
    has_bias: bool
    scaling: str
    minimums: list[float]
    maximums: list[float]
    atlas: AtlasOut
    atlas_url: str


class FilterValuesOut(BaseModel):
    model_id: str
    layer: str
    out_channel: int
    shape: list[int] = Field(description="[I/groups, kh, kw]")
    values: list[list[list[float]]]
    bias: float | None


class BatchNormOut(BaseModel):
    model_id: str
    layer: str
    eps: float
    running_mean: list[float]
    running_var: list[float]
    weight: list[float] = Field(description="γ per channel")
    bias: list[float] = Field(description="β per channel")


class BoxOut(BaseModel):
    top: int
    left: int
    bottom: int
    right: int


class ReceptiveFieldBoxOut(BaseModel):
    model_id: str
    layer: str
    y: int
    x: int
    box: BoxOut = Field(description="inclusive input-pixel box; may extend past the image")
    clipped: BoxOut = Field(description="the box cut to the image")
    size: list[float]
    jump: list[float]
    start: list[float]
    is_global: bool
    gated: bool = False
    seen: BoxOut | None = None
    input: InputShape


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entry documenting the error shape for these statuses."""
    return {status: {"model": ErrorResponse} for status in statuses}


class UnitOperandOut(BaseModel):
    layer: str | None = Field(description="the layer whose output this operand is (null: hidden)")
    value: float
    broadcast: bool = Field(False, description="one number per channel, spread over the map")
    channel: int | None = Field(None, description="concatenation: the operand's own channel")


class UnitMathOut(BaseModel):
    """One unit's value redone by hand from the layer's real input."""

    analysis_id: str
    layer: str
    kind: str
    type: str
    unit: list[int] = Field(description="[channel, y, x] of a map, or [i] of a vector")
    value: float = Field(description="what the network computed")
    recomputed: float = Field(description="the same value redone from the numbers below")
    difference: float
    inputs: list[float | None] = Field(
        default_factory=list,
        description="the numbers the unit reads (window, vector or one value); null: a max pool's "
        "padding, which never wins",
    )
    weights: list[float] = Field(default_factory=list)
    products: list[float] = Field(default_factory=list)
    bias: float | None = None
    shape: list[int] = Field(default_factory=list, description="shape of inputs/weights")
    positions: list[list[int]] = Field(
        default_factory=list,
        description="each input cell's [channel, row, column] in the layer's input map",
    )
    padded: list[bool] = Field(default_factory=list, description="the cell is padding")
    padding_mode: str | None = Field(None, description="zeros, reflect, replicate or circular")
    rule: str | None = Field(None, description="pools: max or average (÷ count)")
    formula: str | None = None
    parameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    operands: list[UnitOperandOut] = Field(default_factory=list)
    note: str | None = None
    source: str | None = Field(
        None, description="the visible layer (or 'input') whose output this layer reads"
    )
