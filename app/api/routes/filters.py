"""Learned parameters: conv filters (atlas, layout, exact weights) and batch-norm constants."""

from functools import cache
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from torch import nn

from app.api.deps import ModelDep, ModelLayerDep
from app.api.errors import ApiError
from app.api.http_cache import ModelCacheDep
from app.api.schemas import (
    AtlasOut,
    BatchNormOut,
    FiltersOut,
    FilterValuesOut,
    error_responses,
)
from app.core.filters import FilterBank, filter_bank, filter_values
from app.core.registry import LayerInfo, LoadedModel

router = APIRouter(prefix="/api/v1/models/{model_id}/layers/{layer}", tags=["filters"])


def conv_of(model: LoadedModel, layer: LayerInfo) -> nn.Conv2d:
    module = model.module_of(layer.name)
    if not isinstance(module, nn.Conv2d):
        raise ApiError(
            404, "not_a_conv_layer", f"layer {layer.name!r} is a {layer.type}, it has no filters"
        )
    return module


@cache
def _bank(model_id: str, layer: str, module: nn.Conv2d) -> FilterBank:
    """Weights never change while serving, so each bank is encoded once per process."""
    return filter_bank(layer, module)


@router.get("/filters", response_model=FiltersOut, responses=error_responses(404))
async def filters(model: ModelDep, layer: ModelLayerDep, _cache: ModelCacheDep) -> FiltersOut:
    """A conv layer's filters: shape, hyper-parameters, atlas layout and per-filter ranges."""
    bank = _bank(model.spec.id, layer.name, conv_of(model, layer))
    return FiltersOut(
        model_id=model.spec.id,
        layer=layer.name,
        shape=list(bank.weight.shape),
        groups=bank.groups,
        depthwise=bank.depthwise,
        rgb=bank.rgb,
        stride=list(bank.stride),
        padding=bank.padding if isinstance(bank.padding, str) else list(bank.padding),
        dilation=list(bank.dilation),
        has_bias=bank.bias is not None,
        scaling=bank.atlas.scaling,
        minimums=bank.atlas.minimums,
        maximums=bank.atlas.maximums,
        atlas=AtlasOut(**bank.atlas.layout.to_json()),
        atlas_url=f"/api/v1/models/{model.spec.id}/layers/{layer.name}/filters.png",
    )


@router.get("/filters.png", response_class=Response, responses=error_responses(404))
async def filters_png(model: ModelDep, layer: ModelLayerDep, cache: ModelCacheDep) -> Response:
    """The filter atlas: RGB tiles for a colour first layer, else a diverging grey grid (grey = 0)."""
    bank = _bank(model.spec.id, layer.name, conv_of(model, layer))
    return Response(bank.atlas.png, media_type="image/png", headers=cache)


@router.get(
    "/filters/{out_channel}", response_model=FilterValuesOut, responses=error_responses(404)
)
async def filter_weights(
    model: ModelDep,
    layer: ModelLayerDep,
    out_channel: Annotated[int, Path(ge=0, le=1_000_000)],
    _cache: ModelCacheDep,
) -> FilterValuesOut:
    """Exact weights and bias of one output filter (for the unit-arithmetic panel)."""
    conv = conv_of(model, layer)
    if out_channel >= conv.out_channels:
        raise ApiError(
            404, "filter_not_found", f"layer {layer.name!r} has filters 0..{conv.out_channels - 1}"
        )
    weight, bias = filter_values(conv, out_channel)
    return FilterValuesOut(
        model_id=model.spec.id,
        layer=layer.name,
        out_channel=out_channel,
        shape=list(weight.shape),
        values=weight.tolist(),
        bias=bias,
    )


@router.get("/batchnorm", response_model=BatchNormOut, responses=error_responses(404))
async def batchnorm_constants(
    model: ModelDep, layer: ModelLayerDep, _cache: ModelCacheDep
) -> BatchNormOut:
    """A batch-norm layer's constants: y = (x − running_mean) / √(running_var + eps) · γ + β."""
    module = model.module_of(layer.name)
    if not isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) or not module.affine:
        raise ApiError(
            404, "not_a_batchnorm_layer", f"layer {layer.name!r} is a {layer.type}, not batch norm"
        )
    return BatchNormOut(
        model_id=model.spec.id,
        layer=layer.name,
        eps=module.eps,
        running_mean=module.running_mean.tolist(),
        running_var=module.running_var.tolist(),
        weight=module.weight.tolist(),
        bias=module.bias.tolist(),
    )
