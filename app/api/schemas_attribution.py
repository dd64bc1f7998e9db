"""Response models of the attribution routes (Grad-CAM, saliency, occlusion, ERF, feature vis, …).

Heatmaps travel inside the JSON as ``data:image/png;base64,…`` URLs, already coloured on the
server (see ``app.core.attribution.colormap``), so one request gives the numbers and the picture.
"""

from typing import Literal

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
    field_size: list[int] | None = Field(
        description="[h, w] input pixels one map cell sees (its receptive field); null: unknown"
    )
    blank_fraction: float = Field(
        description="share of input pixels at the model's blank value (its occlusion fill)"
    )
    heat_on_blank: float = Field(description="share of the stretched map's heat on those pixels")


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
    speckle: float = Field(
        description="mean |difference| of neighbouring pixels over the mean, of the map as drawn"
    )
    plain_speckle: float | None = Field(
        None, description="SmoothGrad only: the plain gradient's speckle, for comparison"
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
    legend_png: str = Field(
        description=f"{PNG_DATA_URL}; the map's palette from −max|drop| (left) to +max|drop|"
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
    status: str = Field(
        description="'done'; 'computing' (HTTP 202: ask again later); 'cancelled' (DELETE)"
    )
    image_url: str | None = None
    start_activation: float | None = Field(None, description="objective on the starting noise")
    final_activation: float | None = None
    steps: int
    done: int = Field(0, description="optimisation steps done so far")
    measured_before_relu: bool = Field(
        description="the objective is the channel's mean before the ReLU that produces it"
    )


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
    verdict: Literal["smooth", "slightly_smoother", "not_smoother"] = Field(
        description="what the two correlations support about the trained filters' smoothness"
    )


class ChannelMeansOut(BaseModel):
    analysis_id: str
    layer: str
    means: list[float] = Field(description="each channel's mean over the map for this input")
    strongest: int = Field(description="the channel with the largest mean")


class JobErrorOut(BaseModel):
    code: str
    message: str


class AttributionJobOut(BaseModel):
    job_id: str
    kind: Literal["occlusion", "saliency"]
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    done: int = Field(description="window positions or noisy copies computed so far")
    total: int = Field(description="how many there are (0 until the job has started)")
    fraction: float = Field(ge=0, le=1)
    url: str = Field(description="this job: GET to poll, DELETE to cancel")
    result: OcclusionOut | SaliencyOut | None = Field(None, description="when status is 'done'")
    error: JobErrorOut | None = Field(None, description="when status is 'failed'")


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
