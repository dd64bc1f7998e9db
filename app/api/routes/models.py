"""The bundled models and their layer tables."""

from fastapi import APIRouter

from app.api.deps import ModelDep, RegistryDep, SettingsDep
from app.api.routes.receptive_field import field_numbers
from app.api.schemas import (
    InputShape,
    LayerOut,
    ModelDetail,
    ModelList,
    ModelSummary,
    Preprocessing,
    ReceptiveFieldOut,
    error_responses,
)
from app.core.receptive_field import LayerReceptiveField
from app.core.registry import LayerInfo, LoadedModel

router = APIRouter(prefix="/api/v1/models", tags=["models"])


def receptive_field_out(field: LayerReceptiveField) -> ReceptiveFieldOut:
    if field.rf is None:
        return ReceptiveFieldOut(size=[], jump=[], start=[], diagnostic=field.diagnostic)
    return ReceptiveFieldOut(**field_numbers(field.rf))


def layer_out(layer: LayerInfo) -> LayerOut:
    return LayerOut(
        name=layer.name,
        type=layer.type,
        kind=layer.kind,
        output_shape=list(layer.output_shape),
        params=layer.params,
        receptive_field=receptive_field_out(layer.receptive_field),
        input_layer=layer.input.source if layer.input else None,
        input_padding=list(layer.input.padding) if layer.input else [0, 0, 0, 0],
    )


def model_summary(model: LoadedModel) -> ModelSummary:
    channels, height, width = model.input_shape
    return ModelSummary(
        id=model.spec.id,
        name=model.spec.name,
        description=model.spec.description,
        num_classes=model.num_classes,
        i18n=model.spec.translations,
        input=InputShape(channels=channels, height=height, width=width),
        input_kind=model.spec.input_kind,
    )


@router.get("", response_model=ModelList)
async def list_models(registry: RegistryDep) -> ModelList:
    """Every model this server can analyze with."""
    return ModelList(models=[model_summary(model) for model in registry])


@router.get("/{model_id}", response_model=ModelDetail, responses=error_responses(404))
async def get_model_card(model: ModelDep, settings: SettingsDep) -> ModelDetail:
    """Model card: labels, preprocessing, parameter count and every layer with its receptive field."""
    spec = model.spec
    pre = spec.preprocess
    return ModelDetail(
        **model_summary(model).model_dump(),
        architecture=spec.entry_point,
        total_params=model.total_params,
        preprocessing=Preprocessing(
            style=pre.style,
            mean=list(pre.mean),
            std=list(pre.std),
            resize=pre.resize,
            interpolation=pre.interpolation,
        ),
        labels=model.labels,
        card=spec.card,
        top_patches=spec.top_patches is not None and spec.top_patches.is_file(),
        occlusion_fill=spec.occlusion_fill,
        layers=[layer_out(layer) for layer in model.layers],
    )
