"""Annotated dependency aliases so routes read like prose; tests override them instead of patching.

Every dependency is ``async def``: FastAPI runs a plain ``def`` one on the thread pool, a round trip
through the event loop and the GIL that cost each request more than the work itself."""

from typing import Annotated

from fastapi import Depends, Path, Request

from app.api.errors import not_found
from app.config import Settings
from app.core.registry import LayerInfo, LoadedModel, ModelRegistry
from app.services.analyses import AnalysisNotFoundError, AnalysisRecord, AnalysisService


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_service(request: Request) -> AnalysisService:
    return request.app.state.analyses


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
ServiceDep = Annotated[AnalysisService, Depends(get_service)]


async def get_model(
    registry: RegistryDep, model_id: Annotated[str, Path(max_length=128)]
) -> LoadedModel:
    model = registry.get(model_id)
    if model is None:
        raise not_found("model", model_id)
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]


async def get_model_layer(
    model: ModelDep, layer: Annotated[str, Path(max_length=256)]
) -> LayerInfo:
    info = model.layer_index.get(layer)
    if info is None:
        raise not_found("layer", layer)
    return info


ModelLayerDep = Annotated[LayerInfo, Depends(get_model_layer)]


async def get_analysis(
    service: ServiceDep, analysis_id: Annotated[str, Path(max_length=64)]
) -> AnalysisRecord:
    try:
        return await service.find(analysis_id)
    except AnalysisNotFoundError:
        raise not_found("analysis", analysis_id) from None


AnalysisDep = Annotated[AnalysisRecord, Depends(get_analysis)]


async def get_analysis_layer(
    service: ServiceDep, record: AnalysisDep, layer: Annotated[str, Path(max_length=256)]
) -> LayerInfo:
    model = service.model_of(record)
    info = model.layer_index.get(layer)
    if info is None:
        raise not_found("layer", layer)
    return info


AnalysisLayerDep = Annotated[LayerInfo, Depends(get_analysis_layer)]
