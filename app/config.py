"""Settings: every limit is a `CONVLENS_*` environment variable with a default that serves a class of 60."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.paths import CACHE_DIR, DATA_DIR, MODELS_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration, read once from the environment (prefix `CONVLENS_`)."""

    model_config = SettingsConfigDict(env_prefix="CONVLENS_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    models_dir: Path = MODELS_DIR
    # The operator's own model specs, served beside the bundled ones: spec files or folders of
    # them, separated by the platform's path separator (":" on Linux). `serve --model` adds to it.
    models: str = ""
    mnist_dir: Path = CACHE_DIR / "mnist" / "package" / "src" / "digits"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # One intra-op thread per forward and one forward per core: on a small shared box, torch's
    # multi-threaded kernels spin against each other and the web server (measured 10-40× slower).
    torch_threads: int = Field(1, ge=0, description="0 keeps torch's default (one per core).")

    # Uploads and decoding.
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)

    # Request limits (app/api/limits.py), enforced before any route or form parser reads the body.
    multipart_overhead_bytes: int = Field(64 * 1024, ge=1024)
    body_timeout_seconds: float = Field(120.0, gt=0)
    max_header_count: int = Field(100, ge=16)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    max_form_fields: int = Field(8, ge=1)
    max_form_field_bytes: int = Field(64 * 1024, ge=1024)

    # Optional per-client limit on uploads and other writes (app/api/ratelimit.py); 0 = off.
    rate_limit_per_minute: int = Field(0, ge=0)
    rate_limit_burst: int = Field(10, ge=1)

    # Inference queue: `inference_concurrency` forwards run at once, `queue_size` more may wait.
    inference_concurrency: int = Field(2, ge=1)
    queue_size: int = Field(128, ge=0)
    retry_after_seconds: int = Field(2, ge=1)
    # Layer statistics may be computed by threads beside the forward, with at most this many
    # bytes of layer outputs waiting for them (past it the forward summarizes inline). Off (0)
    # by default: on 2 cores it measured slower end to end (bench/analyze.py, http-threads);
    # try it where a lone request has cores to spare.
    statistics_waiting_bytes: int = Field(0, ge=0)

    # Optional: freed blocks this large go straight back to the OS (glibc mallopt). Off (0) by
    # default: analyses no longer keep their maps, so glibc's own policy no longer balloons
    # (bench/analyze.py: similar RSS after 53 analyses), while a 64 KiB threshold made every
    # forward page-fault its maps back in (HTTP analyze 3.3× slower in the same run).
    mmap_threshold_bytes: int = Field(0, ge=0)
    # At most this many malloc heaps (glibc's M_ARENA_MAX; 0 keeps glibc's 8 per core): 2 cut a
    # cold class's peak RSS from 1.4 GiB to 0.99 GiB (bench/classroom.py).
    malloc_arenas: int = Field(2, ge=0)

    # Caches (bytes).
    # Sized for a class of 60 within 1 GiB of RSS: records also live on disk, and a layer's maps
    # are recomputed from the stored input when they fall out (a forward up to that layer).
    analysis_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)
    activation_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    atlas_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)
    # Where each analysis's last 8 layer recomputes stopped (the values live there, 0.1-0.5 MB
    # each for Lite0), so that opening a deeper layer runs only the layers in between. A cold
    # class of 60 peaked at 896-927 MiB with 32 MiB here, 942-1,028 MiB with 64, layer p95 alike.
    frontier_cache_bytes: int = Field(32 * 1024 * 1024, ge=0)
    # Clean forwards kept for students dragging a square over their image (live occlusion).
    live_occlusion_cache_bytes: int = Field(128 * 1024 * 1024, ge=0)

    cors_origins: list[str] = Field(default_factory=list)

    # Per server process (uvicorn): open connections + requests in progress beyond this get a plain
    # 503; far above a class (60 students, each a few parallel requests and one presenter stream).
    max_connections: int = Field(1000, ge=16)
    keep_alive_seconds: int = Field(5, ge=1)

    # Classroom scale (docs/deploy.md). Waiting analyses of one model share a forward of up to
    # `max_batch` images; the first waits at most `batch_wait_ms` for company.
    # Each image of a batch holds its own copy of every layer (77 MiB for EfficientNet-Lite0), so
    # a CPU box keeps batches small; on a GPU, 16-32.
    max_batch: int = Field(4, ge=1, le=64)
    # 0: a lone upload never waits for company; uploads that queue up behind a busy slot are
    # batched anyway when it frees.
    batch_wait_ms: float = Field(0.0, ge=0, le=1000)
    # Browsers keep analysis/filter responses this long, then revalidate with If-None-Match (304).
    http_cache_seconds: int = Field(86_400, ge=0)
    # Optional Redis shared by every worker and host: analysis records, permalinks, presenter
    # sessions. Unset: everything stays in this process.
    redis_url: str | None = None
    # Records are kept in Redis when it is set, else on disk (SQLite, WAL) under `data_dir`, so
    # permalinks survive restarts; either store is bounded in bytes (0 = each process's memory
    # only), oldest first out, with at most `record_client_share` of it per client so that one
    # client cannot evict a class's links.
    data_dir: Path = DATA_DIR
    record_store_bytes: int = Field(2 * 1024**3, ge=0)
    record_client_share: float = Field(0.1, gt=0, le=1)
    redis_timeout_seconds: float = Field(2.0, gt=0)
    # Presenter sessions (server-sent events): bounded sessions, followers per process, stream age.
    max_sessions: int = Field(64, ge=1)
    max_session_followers: int = Field(500, ge=1)
    session_ttl_seconds: int = Field(6 * 3600, ge=60)
    sse_heartbeat_seconds: float = Field(15.0, gt=0)
    sse_max_stream_seconds: float = Field(1800.0, gt=0)
    # Presenter sessions on a network you do not trust (docs/security.md): `session_ttl_seconds`
    # is a session's longest life; without a presenter view or heartbeat it ends after
    # `session_idle_seconds`. Sessions and followers are capped per client address (a class
    # behind one NAT shares one address) and followers per session, so one client cannot lock a
    # class out. With `presenter_key` set, creating or driving a session needs it (hosted classes).
    sessions_per_client: int = Field(4, ge=1)
    session_idle_seconds: int = Field(900, ge=10)
    followers_per_session: int = Field(200, ge=1)
    followers_per_client: int = Field(100, ge=1)
    presenter_key: SecretStr | None = None
    # A request head (request line + headers) must arrive within this many seconds of the
    # connection opening (on a kept-alive connection: of the next request's first byte); the
    # HTTP protocol enforces it (app/http_protocol.py), because uvicorn has no such timeout.
    request_head_timeout_seconds: float = Field(10.0, gt=0)

    # Hostile input (docs/security.md, app/services/decoding.py): uploads are decoded by
    # `decode_workers` worker processes, never in an inference slot; a decode past
    # `decode_timeout_seconds` is killed. No request may raise memory by more than
    # `request_memory_bytes`: a worker's address space is capped at its idle size plus that, and
    # images whose mode needs more are refused from their header. Progressive JPEGs with more than
    # `max_jpeg_scans` scans are refused unread (0 = no check). Bodies that are not image uploads
    # (JSON) are capped at `max_json_body_bytes` (the playground's largest is ~150 KB).
    decode_workers: int = Field(4, ge=1, le=64)
    decode_timeout_seconds: float = Field(3.0, gt=0)
    request_memory_bytes: int = Field(256 * 1024 * 1024, ge=16 * 1024 * 1024)
    max_jpeg_scans: int = Field(100, ge=0)
    max_json_body_bytes: int = Field(256 * 1024, ge=1024)

    # Attribution: SmoothGrad's default noisy copies; feature visualizations cached on disk and
    # computed by a background worker with at most `feature_vis_queue_size` jobs waiting.
    smoothgrad_samples: int = Field(16, ge=1, le=256)
    feature_vis_dir: Path = CACHE_DIR / "feature-vis"
    feature_vis_queue_size: int = Field(16, ge=1)

    # Bounded attribution work (issue 15 item 6, issue 16): a feature visualization runs at most
    # `feature_vis_max_steps` steps (the API's ceiling is 256), one client may have
    # `feature_vis_jobs_per_client` of them waiting, and the disk cache keeps at most
    # `feature_vis_cache_bytes` (oldest deleted first). Occlusion and SmoothGrad run as jobs with
    # progress and cancel (app/core/attribution/jobs.py): at most `attribution_jobs` queued or
    # running, `attribution_jobs_per_client` per client; a job nobody polled for
    # `attribution_job_abandon_seconds` is cancelled, a finished one kept
    # `attribution_job_keep_seconds` for its result.
    feature_vis_max_steps: int = Field(256, ge=1, le=256)
    feature_vis_jobs_per_client: int = Field(2, ge=1)
    feature_vis_cache_bytes: int = Field(64 * 1024 * 1024, ge=1)
    attribution_jobs: int = Field(16, ge=1)
    attribution_jobs_per_client: int = Field(4, ge=1)
    attribution_job_abandon_seconds: float = Field(30.0, gt=0)
    attribution_job_keep_seconds: float = Field(120.0, gt=0)

    @property
    def extra_model_paths(self) -> list[Path]:
        """The paths of `models`, in order."""
        return [Path(part) for part in self.models.split(os.pathsep) if part.strip()]

    @property
    def max_body_bytes(self) -> int:
        """The whole request body: one upload plus its multipart framing."""
        return self.max_upload_bytes + self.multipart_overhead_bytes


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` and pass them to `create_app`)."""
    return Settings()
