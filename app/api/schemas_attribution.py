"""Response models of the attribution routes (Grad-CAM, saliency, occlusion, ERF, feature vis, …).

Heatmaps travel inside the JSON as ``data:image/png;base64,…`` URLs, already coloured on the
server (see ``app.core.attribution.colormap``), so one request gives the numbers and the picture.
"""

from pydantic import BaseModel, Field

from app.api.schemas import AtlasOut, BoxOut, InputShape, PredictionOut

PNG_DATA_URL = "a PNG as a data: URL (coloured server-side), ready for an <img src>"


class ClassTarget(BaseModel):
    class_index: int = Field(description="the class explained (default: the top prediction)")
    label: str
    score: float = Field(description="the class logit for the unmodified input")


class GradCamOut(ClassTarget):
    analysis_id: str
    layer: str
    cam: list[list[float]] = Field(
        description="ReLU(Σ_k α_k A_k) at the layer's resolution, row-major"
    )
    cam_max: float
    overlay_png: str = Field(
        description=f"{PNG_DATA_URL}; RGBA at input size, transparent where the map is 0"
    )
    input: InputShape


class SaliencyOut(ClassTarget):
    analysis_id: str
    method: str = Field(examples=["vanilla", "smoothgrad"])
    samples: int = Field(description="noisy copies averaged (0 for vanilla)")
    noise_std: float = Field(description="standard deviation of the SmoothGrad noise, model units")
    seed: int
    max: float = Field(description="largest max-over-channels |gradient|")
    map_png: str = Field(
        description=f"{PNG_DATA_URL}; black = 0, pale yellow = the 99th percentile and above"
    )


class OcclusionOut(ClassTarget):
    analysis_id: str
    window: list[int] = Field(description="[h, w] of the grey patch, input pixels")
    stride: list[int]
    fill_pixel: float = Field(description="the patch's pixel value in [0, 1] before normalising")
    rows: list[int] = Field(description="top offset of each window row")
    cols: list[int] = Field(description="left offset of each window column")
    drops: list[list[float]] = Field(description="score(input) − score(occluded), per position")
    max_drop: float
    min_drop: float
    map_png: str = Field(
        description=f"{PNG_DATA_URL}; per pixel the mean drop of the windows covering it; "
        "red = the class score fell, blue = it rose, white = no change"
    )


class EffectiveFieldMap(BaseModel):
    activation: float = Field(description="the unit's value for this input")
    max_gradient: float
    mass_in_box: float = Field(description="share of Σ|∂unit/∂x| inside the theoretical box")
    effective_size: int = Field(
        description="side of the smallest centred square holding 95 % of the gradient mass"
    )
    map_png: str = Field(description=f"{PNG_DATA_URL}; |∂unit/∂x| summed over colour channels")


class EffectiveFieldOut(BaseModel):
    analysis_id: str
    layer: str
    y: int
    x: int
    channel: int | None = Field(description="None: the unit's channels summed")
    box: BoxOut = Field(description="theoretical receptive field, inclusive; may pass the edge")
    clipped: BoxOut
    size: list[int] = Field(description="theoretical size [h, w]")
    trained: EffectiveFieldMap
    random: EffectiveFieldMap = Field(description="the same unit in a randomly initialised twin")
    random_seed: int
    input: InputShape


class FeatureVisOut(BaseModel):
    model_id: str
    layer: str
    channel: int
    status: str = Field(description="'done', or 'computing' (HTTP 202: ask again later)")
    image_url: str | None = None
    start_activation: float | None = Field(None, description="objective on the starting noise")
    final_activation: float | None = None
    steps: int


class TopPatchOut(BaseModel):
    rank: int
    digit_index: int = Field(description="index in the held-out set (last 100 digits per class)")
    label: int
    y: int
    x: int
    activation: float
    box: BoxOut = Field(description="the unit's receptive field in the 28×28 digit")


class TopPatchesOut(BaseModel):
    model_id: str
    layer: str
    channel: int
    patch_size: list[int]
    patches: list[TopPatchOut]
    grid_url: str = Field(description="3×3 PNG grid, best first, row by row, 1-px white gaps")


class FilterBankOut(BaseModel):
    neighbour_correlation: float = Field(
        description="correlation of adjacent weights: ≈0 for noise, > 0 for smooth filters"
    )
    scaling: str
    minimums: list[float]
    maximums: list[float]
    atlas: AtlasOut
    atlas_url: str


class FirstLayerFiltersOut(BaseModel):
    model_id: str
    layer: str
    shape: list[int]
    random_seed: int
    trained: FilterBankOut
    random: FilterBankOut


class LiveOcclusionOut(BaseModel):
    analysis_id: str
    top: int
    left: int
    size: int
    class_index: int
    label: str
    score: float = Field(description="the class's logit with the square in place")
    clean_score: float = Field(description="the class's logit without it")
    predictions: list[PredictionOut] = Field(description="top-5 with the square in place")
