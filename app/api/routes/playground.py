"""Convolution playground API: conv, pooling, ReLU and im2col on a small input, every step shown.

Each request body is bounded by its schema (`app/api/schemas_playground.py`), by the rules between
its fields (at most ``MAX_STEP_VALUES`` window values, …) and by the JSON cap
(`RequestLimitsMiddleware`). The work, and the JSON of its answer,
runs on the playground's own few threads (`PLAYGROUND_THREADS`), not FastAPI's 40-thread pool,
so no number of playground requests can take every thread and core the server has.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from app.api.errors import ApiError
from app.api.schemas import ErrorResponse, error_responses
from app.api.schemas_playground import (
    CROSS_FIELD_RULES,
    AxisFitOut,
    ConvRequest,
    Im2ColOut,
    Im2ColRequest,
    LimitsOut,
    PlaygroundOut,
    PoolRequest,
    ReluRequest,
    StepOut,
)
from app.core import playground
from app.core.lessons.presets import PRESETS
from app.core.playground import AxisFit, Im2Col, PlaygroundError, PlaygroundResult
from app.services.threads import BoundedThreads

router = APIRouter(tags=["playground"])
PREFIX = "/api/v1/playground"


def axis_fit_out(fit: AxisFit) -> AxisFitOut:
    return AxisFitOut(
        axis=fit.axis,
        input=fit.input,
        kernel=fit.kernel,
        effective_kernel=fit.effective_kernel,
        stride=fit.stride,
        padding=fit.padding,
        dilation=fit.dilation,
        span=fit.span,
        output=fit.output,
        exact_output=fit.exact_output,
        fits=fit.fits,
        formula=fit.formula(),
        explanation=fit.explanation(),
    )


def playground_out(result: PlaygroundResult) -> PlaygroundOut:
    geometry = result.geometry
    return PlaygroundOut(
        operation=result.operation,
        input_shape=list(result.input_shape),
        output_shape=list(result.output.shape),
        output=result.output.tolist(),
        padded_input=result.padded_input.tolist(),
        kernel=None if geometry is None else list(geometry.kernel),
        stride=None if geometry is None else list(geometry.stride),
        padding=None if geometry is None else list(geometry.padding),
        dilation=None if geometry is None else list(geometry.dilation),
        fits=None if result.fits is None else [axis_fit_out(fit) for fit in result.fits],
        total_steps=len(result.steps),
        steps=[StepOut.model_validate(step, from_attributes=True) for step in result.steps],
    )


def im2col_out(result: Im2Col) -> Im2ColOut:
    return Im2ColOut(
        weight_rows=result.weight_rows.tolist(),
        columns=result.columns.tolist(),
        product=result.product.tolist(),
        output=result.output.tolist(),
        conv_output=result.conv_output.tolist(),
        shapes={
            "W_row": list(result.weight_rows.shape),
            "X_col": list(result.columns.shape),
            "product": list(result.product.shape),
            "output": list(result.output.shape),
        },
        max_abs_difference=(result.output - result.conv_output).abs().max().item(),
    )


PLAYGROUND_THREADS = BoundedThreads("convlens-playground", concurrency=2, max_waiting=32)
"""Two requests compute at once, 32 more may wait, the rest get 503. The largest valid request
(3×32×32 input, eight 11×11 filters, 512 steps) takes 0.3–1 s, peaks at +49 MiB and answers 9 MB."""


async def playground_threads() -> BoundedThreads:
    """The threads playground work runs on (a dependency, so tests can hand it others)."""
    return PLAYGROUND_THREADS


ThreadsDep = Annotated[BoundedThreads, Depends(playground_threads)]
ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(413, 503),
    422: {
        "model": ErrorResponse,
        "description": "`invalid_request`: the body breaks its schema; otherwise the code of the "
        "rule between fields it breaks: "
        + "; ".join(f"`{code}`: {rule}" for code, rule in CROSS_FIELD_RULES.items()),
    },
}


async def run_playground(
    threads: BoundedThreads,
    operation: playground.Operation,
    body: BaseModel,
    answer: Callable[[Any], BaseModel],
) -> Response:
    """Run a request body through the core and encode `answer(result)` as JSON, both on
    `threads`; refusals become 422 with their reason."""

    def compute() -> bytes:
        try:
            result = playground.run(operation, body.model_dump())
        except PlaygroundError as error:
            raise ApiError(422, error.code, error.message) from None
        return answer(result).model_dump_json().encode()

    return Response(await threads.run(compute), media_type="application/json")


@router.post(PREFIX + "/conv", response_model=PlaygroundOut, responses=ERRORS)
async def conv(body: ConvRequest, threads: ThreadsDep) -> Response:
    """``F.conv2d`` with every output value explained: window, products, sum, bias."""
    return await run_playground(threads, "conv", body, playground_out)


@router.post(PREFIX + "/pool", response_model=PlaygroundOut, responses=ERRORS)
async def pool(body: PoolRequest, threads: ThreadsDep) -> Response:
    """``F.max_pool2d`` / ``F.avg_pool2d``, window by window."""
    return await run_playground(threads, "pool", body, playground_out)


@router.post(PREFIX + "/relu", response_model=PlaygroundOut, responses=ERRORS)
async def relu(body: ReluRequest, threads: ThreadsDep) -> Response:
    """``F.relu``: f(x) = max(0, x), element by element."""
    return await run_playground(threads, "relu", body, playground_out)


@router.post(PREFIX + "/im2col", response_model=Im2ColOut, responses=ERRORS)
async def im2col(body: Im2ColRequest, threads: ThreadsDep) -> Response:
    """The convolution as one matrix product W_row · X_col, beside ``F.conv2d``."""
    return await run_playground(threads, "im2col", body, im2col_out)


@router.get(PREFIX + "/output-size", response_model=AxisFitOut)
def output_size(
    input: Annotated[int, Query(ge=1, le=100_000)],
    kernel: Annotated[int, Query(ge=1, le=10_000)],
    stride: Annotated[int, Query(ge=1, le=10_000)] = 1,
    padding: Annotated[int, Query(ge=0, le=10_000)] = 0,
    dilation: Annotated[int, Query(ge=1, le=1_000)] = 1,
) -> AxisFitOut:
    """O = (W − K + 2P)/S + 1 for one axis, with why it fits or not (no limits on size here)."""
    return axis_fit_out(AxisFit("width", input, kernel, stride, padding, dilation))


@router.get(PREFIX + "/limits", response_model=LimitsOut)
def limits() -> LimitsOut:
    """The playground's size limits, so a page can check before it asks."""
    return LimitsOut(
        max_channels=playground.MAX_CHANNELS,
        max_side=playground.MAX_SIDE,
        max_kernels=playground.MAX_KERNELS,
        max_kernel_side=playground.MAX_KERNEL_SIDE,
        max_steps=playground.MAX_STEPS,
        max_step_values=playground.MAX_STEP_VALUES,
        max_value=playground.MAX_VALUE,
    )


@router.get("/playground", response_class=HTMLResponse, include_in_schema=False)
def playground_page(request: Request) -> HTMLResponse:
    """The playground page; ``?preset=slug`` opens a seed example."""
    presets = [
        {"slug": p.slug, "title": p.title.to_json(), "operation": p.operation} for p in PRESETS
    ]
    return request.app.state.templates.TemplateResponse(
        request, "lessons/playground.html", {"presets": presets}
    )
