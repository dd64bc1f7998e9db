"""create_app(): settings, lifespan (load models once), routers, middleware."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.api.errors import install_error_handlers
from app.api.http_cache import install_conditional_get
from app.api.limits import RequestLimits, RequestLimitsMiddleware
from app.api.middleware import RequestIdMiddleware, SecurityHeadersMiddleware
from app.api.ratelimit import RateLimitMiddleware, TokenBuckets
from app.api.router import api_router
from app.config import Settings, get_settings
from app.core.registry import ModelRegistry, select_device
from app.paths import STATIC_DIR, TEMPLATES_DIR
from app.services.analyses import AnalysisService
from app.services.decoding import shared_decoder
from app.services.inference import InferenceQueue, fix_mmap_threshold, limit_malloc_arenas
from app.services.record_store import RecordStore
from app.services.sessions import SessionHub, SessionLimits
from app.services.shared_records import SharedRecords, redis_client


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    """Build the application; `registry` lets tests share already-loaded models."""
    settings = settings or get_settings()
    if settings.malloc_arenas:
        limit_malloc_arenas(settings.malloc_arenas)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        if settings.mmap_threshold_bytes:
            fix_mmap_threshold(settings.mmap_threshold_bytes)
        models = (
            registry
            if registry is not None
            else ModelRegistry.from_specs(
                settings.models_dir,
                select_device(settings.device),
                settings.extra_model_paths,
                settings.data_dir / "layer-tables",
            )
        )
        queue = InferenceQueue(
            settings.inference_concurrency,
            settings.queue_size,
            settings.retry_after_seconds,
            max_batch=settings.max_batch,
            batch_wait=settings.batch_wait_ms / 1000,
        )
        async with AsyncExitStack() as stack:
            redis = None
            if settings.redis_url:
                redis = await stack.enter_async_context(
                    redis_client(settings.redis_url, settings.redis_timeout_seconds)
                )
            shared: SharedRecords | RecordStore | None = None
            if redis is not None and settings.record_store_bytes:
                shared = SharedRecords(
                    redis, settings.record_store_bytes, settings.record_client_share
                )
            elif settings.record_store_bytes:
                shared = RecordStore(
                    settings.data_dir / "records.sqlite3",
                    settings.record_store_bytes,
                    settings.record_client_share,
                )
                stack.callback(shared.close)
            app.state.registry = models
            app.state.queue = queue
            app.state.analyses = AnalysisService(
                models,
                queue,
                max_image_pixels=settings.max_image_pixels,
                record_bytes=settings.analysis_cache_bytes,
                activation_bytes=settings.activation_cache_bytes,
                atlas_bytes=settings.atlas_cache_bytes,
                shared=shared,
                statistics_waiting_bytes=settings.statistics_waiting_bytes,
                frontier_bytes=settings.frontier_cache_bytes,
            )
            app.state.sessions = SessionHub(SessionLimits.from_settings(settings), redis)
            tasks = await stack.enter_async_context(anyio.create_task_group())
            tasks.start_soon(shared_decoder().warm_up)  # beside start-up, not before /healthz
            if redis is not None:
                tasks.start_soon(app.state.sessions.relay, redis)
            yield
            tasks.cancel_scope.cancel()

    app = FastAPI(
        title="convlens API",
        version="1.0.0",
        summary="Feature maps, filters and receptive fields of real trained CNNs.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=TEMPLATES_DIR)
    install_error_handlers(app)
    install_conditional_get(app)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(RequestLimitsMiddleware, limits=RequestLimits.from_settings(settings))
    if settings.rate_limit_per_minute:
        buckets = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.add_middleware(RateLimitMiddleware, buckets=buckets)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"]
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
