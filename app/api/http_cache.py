"""Conditional GETs: content-derived ETags, Cache-Control, and 304 before any work is done.

Every cacheable response here is a pure function of (convlens version, model weights, URL): an
analysis id is a hash of the model and the image bytes, and weights carry their sha256 in the
manifest. So the ETag is a hash of exactly those, known before the atlas is encoded or a channel
read, and a class revalidating the same atlases costs one dictionary lookup per request.
"""

import hashlib
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response

from app.api.deps import AnalysisDep, ModelDep, ServiceDep, SettingsDep
from app.core.registry import LoadedModel

try:
    CONVLENS_VERSION = version("convlens")
except PackageNotFoundError:  # a source tree that was never installed
    CONVLENS_VERSION = "source"


class NotModifiedError(Exception):
    """The client's copy is current: answered as 304 with the validators and no body."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("not modified")
        self.headers = headers


def etag_of(*parts: str) -> str:
    """A strong ETag: the quoted hash of the convlens version and `parts`."""
    digest = hashlib.sha256("\n".join((CONVLENS_VERSION, *parts)).encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or any listed tag equal by weak comparison."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def conditional_headers(request: Request, model: LoadedModel, max_age: int) -> dict[str, str]:
    """ETag and Cache-Control for this URL of `model`'s data.

    Raises:
        NotModifiedError: the request's If-None-Match already names this ETag.
    """
    path = request.url.path
    etag = etag_of(model.spec.id, model.weights_sha256, path, request.url.query)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        raise NotModifiedError(headers)
    return headers


async def analysis_cache(
    request: Request,
    response: Response,
    record: AnalysisDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Validators for a response derived from one analysis (set on JSON responses directly)."""
    headers = conditional_headers(request, service.model_of(record), settings.http_cache_seconds)
    response.headers.update(headers)
    return headers


async def model_cache(
    request: Request, response: Response, model: ModelDep, settings: SettingsDep
) -> dict[str, str]:
    """Validators for a response derived from a model's weights alone (filters)."""
    headers = conditional_headers(request, model, settings.http_cache_seconds)
    response.headers.update(headers)
    return headers


AnalysisCacheDep = Annotated[dict[str, str], Depends(analysis_cache)]
ModelCacheDep = Annotated[dict[str, str], Depends(model_cache)]


async def not_modified(_request: Request, error: NotModifiedError) -> Response:
    return Response(status_code=304, headers=error.headers)


def install_conditional_get(app: FastAPI) -> None:
    """Answer `NotModifiedError` from any dependency with a bodiless 304."""
    app.add_exception_handler(NotModifiedError, not_modified)
