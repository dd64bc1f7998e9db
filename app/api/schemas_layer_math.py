"""Response models of the layer-arithmetic views: im2col, folded batch norm, separable pairs."""

from pydantic import BaseModel, Field


class Im2colOut(BaseModel):
    analysis_id: str
    layer: str
    channel: int
    y: int
    x: int
    groups: int = Field(description="the layer is this many independent products (depthwise: C)")
    group: int = Field(description="the product this unit belongs to")
    rows: int = Field(description="rows of the unfolded input: output positions H_out·W_out")
    columns: int = Field(description="columns: k_h·k_w·C_in/groups numbers per filter")
    filters_in_group: int = Field(description="columns of the filter matrix: C_out/groups")
    row_index: int = Field(description="this unit's row: y·W_out + x")
    row: list[float] = Field(description="the unfolded input row (window, channel-major)")
    column: list[float] = Field(description="the filter's weights, flattened the same way")
    dot: float = Field(description="row · column")
    bias: float | None
    value: float = Field(description="what the network computed: dot + bias")
    preview_start: int
    preview: list[list[float]] = Field(description="a few rows of the unfolded input")


class FoldedOut(BaseModel):
    analysis_id: str
    conv: str
    batchnorm: str
    channel: int
    raw_weights: list[float]
    folded_weights: list[float] = Field(description="w·γ/√(σ²+ε)")
    raw_bias: float
    folded_bias: float = Field(description="β + (b − μ)·γ/√(σ²+ε)")
    scale: float = Field(description="γ/√(σ²+ε)")
    unfolded_value: float = Field(description="batch norm of the conv's output, as the network ran")
    folded_value: float = Field(description="the folded conv on the same window")


class SeparablePairOut(BaseModel):
    depthwise: str
    pointwise: str
    between: list[str]
    in_channels: int
    out_channels: int
    kernel: list[int]
    output_hw: list[int]
    params: int
    full_params: int = Field(description="one k×k conv with the same input and output shape")
    macs: int = Field(description="multiply-adds of the pair for one image")
    full_macs: int


class SeparableOut(BaseModel):
    model_id: str
    pairs: list[SeparablePairOut]
