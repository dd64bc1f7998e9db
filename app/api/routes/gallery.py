"""Architecture gallery: JSON under /api/v1/gallery and the pages /gallery, /gallery/{id}.

A network's layer table has the exact shape of a live model's (``layer_out``), so the same
architecture strip draws both. Tables are computed once per process, on the meta device.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from app.api.errors import not_found
from app.api.routes.models import layer_out
from app.api.routes.pages import missing_page
from app.api.schemas import InputShape, LayerOut, error_responses
from app.core.lessons.gallery import NETWORK_INDEX, NETWORKS, Network, describe, total_params

router = APIRouter(tags=["gallery"])
PREFIX = "/api/v1/gallery"


class NetworkSummary(BaseModel):
    id: str
    name: str
    year: int
    paper: str
    input: InputShape
    total_params: int = Field(description="counted from the in-repo definition")
    published_params: int | None
    params_source: dict[str, str]
    summary: dict[str, str]
    diagram: str | None = Field(description="inception, residual or dense: a block diagram")


class LandmarkOut(BaseModel):
    layer: str
    published_rf: int = Field(description="receptive-field size from the source")
    computed_rf: int | None = Field(description="what the receptive-field trace gives")
    note: dict[str, str] | None = Field(description="how the reference was derived (en, zh)")
    citation: str | None = Field(description="the publication the reference comes from")


class NetworkDetail(NetworkSummary):
    landmarks: list[LandmarkOut]
    layer_count: int = Field(description="all visible layers, before any depth filter")
    layers: list[LayerOut]


class NetworkList(BaseModel):
    networks: list[NetworkSummary]


def network_summary(network: Network) -> NetworkSummary:
    channels, height, width = network.input_shape
    return NetworkSummary(
        id=network.id,
        name=network.name,
        year=network.year,
        paper=network.paper,
        input=InputShape(channels=channels, height=height, width=width),
        total_params=total_params(network.id),
        published_params=network.published_params,
        params_source=network.params_source.to_json(),
        summary=network.summary.to_json(),
        diagram=network.diagram,
    )


def _network(network_id: str) -> Network:
    network = NETWORK_INDEX.get(network_id)
    if network is None:
        raise not_found("network", network_id)
    return network


def network_detail(network: Network, depth: int | None) -> NetworkDetail:
    description = describe(network.id)
    index = {layer.name: layer for layer in description.layers}
    landmarks = []
    for landmark in network.landmarks:
        field = index[landmark.layer].receptive_field.rf
        computed = None if field is None else field.size[0]
        landmarks.append(
            LandmarkOut(
                layer=landmark.layer,
                published_rf=landmark.rf_size,
                computed_rf=computed,
                note=None if landmark.note is None else landmark.note.to_json(),
                citation=landmark.citation,
            )
        )
    shown = [
        layer for layer in description.layers if depth is None or layer.name.count(".") < depth
    ]
    return NetworkDetail(
        **network_summary(network).model_dump(),
        landmarks=landmarks,
        layer_count=len(description.layers),
        layers=[layer_out(layer) for layer in shown],
    )


NetworkPath = Annotated[str, Path(max_length=64)]
DepthQuery = Annotated[
    int | None,
    Query(ge=1, le=8, description="only layers at most this deep (1: top level, 2: blocks' parts)"),
]


@router.get(PREFIX, response_model=NetworkList)
def list_networks() -> NetworkList:
    """The classic architectures, oldest first, with their parameter totals."""
    return NetworkList(networks=[network_summary(network) for network in NETWORKS])


@router.get(PREFIX + "/{network_id}", response_model=NetworkDetail, responses=error_responses(404))
def get_network(network_id: NetworkPath, depth: DepthQuery = None) -> NetworkDetail:
    """One network's layer table (output shape, parameters, receptive field) and landmarks."""
    return network_detail(_network(network_id), depth)


@router.get("/gallery", response_class=HTMLResponse, include_in_schema=False)
def gallery_page(request: Request) -> HTMLResponse:
    networks = [network_summary(network).model_dump() for network in NETWORKS]
    return request.app.state.templates.TemplateResponse(
        request, "lessons/gallery.html", {"networks": networks}
    )


@router.get("/gallery/{network_id}", response_class=HTMLResponse, include_in_schema=False)
def network_page(request: Request, network_id: NetworkPath) -> HTMLResponse:
    network = NETWORK_INDEX.get(network_id)
    if network is None:
        return missing_page(request, "network", network_id)
    return request.app.state.templates.TemplateResponse(
        request, "lessons/network.html", {"network": network_summary(network).model_dump()}
    )
