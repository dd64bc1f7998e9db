"""Analyses: upload bytes → cached analysis record, feature maps, atlases.

Three byte-bounded caches, each keyed by content: records (input tensor, predictions, layer stats:
small, kept long), activations (one layer's float32 maps each), and encoded atlas PNGs. Identical
uploads in flight at the same moment share one forward; different uploads for one model waiting at
the same moment share a batched forward. With a shared store (Redis), records made by any worker
are found by every other.

An analysis keeps no maps: its forward summarizes every layer as it runs (``analysis``), and the
record stores the model input as the network saw it. A layer somebody opens is recomputed by a
forward that stops at that layer (cheaper than the forward up to it ever was to keep: 81 MB per
photo for EfficientNet-Lite0), and kept in a byte-bounded LRU while it is being read.
"""

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import anyio
import torch

from app.core.analysis import (
    WAITING_BYTES,
    AnalysisResult,
    analyze_batch,
    resume_activations,
)
from app.core.cache import ByteLRU
from app.core.encode import Atlas, feature_map_atlas, png_bytes
from app.core.layer_program import Frontier
from app.core.preprocess import (
    PreprocessSpec,
    decode_image,
    denormalize,
    input_from_pixels,
    to_model_input,
)
from app.core.registry import LoadedModel, ModelRegistry
from app.core.unit_math import UnitMath, explain_unit
from app.services.decoding import shared_decoder
from app.services.inference import InferenceQueue
from app.services.record_store import RecordStore
from app.services.records import ANALYSIS_ID, AnalysisRecord, make_analysis_id
from app.services.shared_records import SharedRecords

__all__ = ["AnalysisNotFoundError", "AnalysisRecord", "AnalysisService", "make_analysis_id"]

logger = logging.getLogger("convlens.records")

V = TypeVar("V")
T = TypeVar("T")


class AnalysisNotFoundError(KeyError):
    """No analysis with that id (never made, or evicted from every cache)."""


def model_input(data: bytes, max_image_pixels: int, spec: PreprocessSpec) -> torch.Tensor:
    """Upload bytes → the (C, H, W) tensor the model reads (decoding is checked and capped)."""
    return to_model_input(decode_image(data, max_image_pixels), spec)


def made_by(record: AnalysisRecord, model: LoadedModel) -> bool:
    """Whether the record's statistics come from the model as loaded now: its weights and its
    preprocessing (a record older than these fields is taken as it is)."""
    return record.weights_sha256 in (None, model.weights_sha256) and record.preprocess in (
        None,
        model.spec.preprocess,
    )


def tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


FRONTIERS_PER_ANALYSIS = 8
"""Frontiers kept per analysis. Students who uploaded the same photo share one analysis and open
its layers each at their own depth: with one frontier, each one's next layer mostly came before
the frontier another had just left, and started at the input again."""


def with_frontier(
    kept: tuple[Frontier, ...], new: Frontier, limit: int = FRONTIERS_PER_ANALYSIS
) -> tuple[Frontier, ...]:
    """``kept`` plus ``new`` (replacing one at the same position), the ``limit`` most recent."""
    others = tuple(frontier for frontier in kept if frontier.position != new.position)
    return (*others, new)[-limit:]


class AnalysisService:
    """Owns the caches; every CPU-heavy step goes through the inference queue."""

    def __init__(
        self,
        registry: ModelRegistry,
        queue: InferenceQueue,
        *,
        max_image_pixels: int,
        record_bytes: int,
        activation_bytes: int,
        atlas_bytes: int,
        shared: SharedRecords | RecordStore | None = None,
        statistics_waiting_bytes: int = WAITING_BYTES,
        frontier_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.registry = registry
        self.statistics_waiting_bytes = statistics_waiting_bytes
        self.queue = queue
        self.shared = shared
        self.max_image_pixels = max_image_pixels
        self.records: ByteLRU[AnalysisRecord] = ByteLRU(record_bytes, lambda r: r.nbytes)
        self.activations: ByteLRU[torch.Tensor] = ByteLRU(activation_bytes, tensor_bytes)
        self.atlases: ByteLRU[Atlas] = ByteLRU(
            atlas_bytes, lambda a: len(a.png) + 16 * len(a.minimums)
        )
        self.inputs: ByteLRU[bytes] = ByteLRU(atlas_bytes // 8, len)
        # Where each analysis's last few layer recomputes stopped (most recent last): the next
        # one starts at the deepest of them before its layer.
        self.frontiers: ByteLRU[tuple[Frontier, ...]] = ByteLRU(
            frontier_bytes, lambda kept: sum(frontier.nbytes for frontier in kept)
        )
        self._inflight: dict[str, anyio.Event] = {}
        self._pending: dict[tuple[int, str, str], anyio.Event] = {}

    async def analyze(
        self, model: LoadedModel, data: bytes, client: str = ""
    ) -> tuple[AnalysisRecord, bool]:
        """The analysis of `data` by `model` and whether it came from the cache.

        ``client`` (the uploader's address) counts the record against that client's share of
        the durable store.
        """
        digest = hashlib.sha256(data).hexdigest()
        analysis_id = make_analysis_id(model.spec.id, digest)
        while (pending := self._inflight.get(analysis_id)) is not None:
            await pending.wait()
        record = self.records.get(analysis_id)
        if record is not None:
            return record, True
        done = self._inflight[analysis_id] = anyio.Event()
        try:
            record = await self._shared_record(analysis_id)
            if record is not None:
                return record, True
            record = await self._compute(model, data, analysis_id, digest, client)
        finally:
            del self._inflight[analysis_id]
            done.set()
        return record, False

    async def _compute(
        self, model: LoadedModel, data: bytes, analysis_id: str, digest: str, client: str
    ) -> AnalysisRecord:
        """Decode (in a decode worker process), then the forward (batched with other uploads)."""
        spec = model.spec.preprocess
        pixels = await shared_decoder().model_pixels(data, self.max_image_pixels, spec)
        inputs = input_from_pixels(pixels, spec)
        summarize = partial(analyze_batch, model, waiting_bytes=self.statistics_waiting_bytes)
        result: AnalysisResult = await self.queue.run_batched(model.spec.id, inputs, summarize)
        stored = AnalysisRecord(
            analysis_id=analysis_id,
            model_id=model.spec.id,
            content_sha256=digest,
            input=inputs,
            logits=result.logits,
            predictions=result.predictions,
            layers=result.layers,
            created_at=time.time(),
            pixels=torch.from_numpy(pixels),
            preprocess=spec,
            weights_sha256=model.weights_sha256,
        )
        record = stored.without_pixels()  # the store keeps the pixels, this process the input
        self.records.put(analysis_id, record)
        if self.shared is not None:
            await self.shared.put(stored, client)
        return record

    async def _shared_record(self, analysis_id: str) -> AnalysisRecord | None:
        """The record another worker made (kept here too from now on), if a store is shared.

        A record made before the model's weights or preprocessing changed is not served: its
        statistics would not match the layers recomputed now. Uploading the image again
        replaces it.
        """
        if self.shared is None:
            return None
        stored = await self.shared.get(analysis_id)
        model = None if stored is None else self.registry.get(stored.model_id)
        if stored is None or model is None:
            return None
        if not made_by(stored, model):
            logger.info(
                "stored record %s was made by another version of %s", analysis_id, model.spec.id
            )
            return None
        record = stored.without_pixels()
        self.records.put(analysis_id, record)
        return record

    def record(self, analysis_id: str) -> AnalysisRecord:
        """A record this process holds (see `find` for one any worker made)."""
        record = self.records.get(analysis_id)
        if record is None:
            raise AnalysisNotFoundError(analysis_id)
        return record

    async def find(self, analysis_id: str) -> AnalysisRecord:
        """The record with this id, from this process or from the shared store.

        Raises:
            AnalysisNotFoundError: no worker made it, or it expired everywhere.
        """
        if not ANALYSIS_ID.fullmatch(analysis_id):
            raise AnalysisNotFoundError(analysis_id)
        record = self.records.get(analysis_id) or await self._shared_record(analysis_id)
        if record is None:
            raise AnalysisNotFoundError(analysis_id)
        return record

    def model_of(self, record: AnalysisRecord) -> LoadedModel:
        model = self.registry.get(record.model_id)
        if model is None:
            raise AnalysisNotFoundError(record.analysis_id)
        return model

    async def _once(
        self, cache: ByteLRU[V], key: tuple[str, str], compute: Callable[[], Awaitable[V]]
    ) -> V:
        """`cache[key]`, computed by one caller while concurrent callers for it wait."""
        flight = (id(cache), *key)
        while (cached := cache.get(key)) is None:
            pending = self._pending.get(flight)
            if pending is None:
                break
            await pending.wait()
        if cached is not None:
            return cached
        done = self._pending[flight] = anyio.Event()
        try:
            value = await compute()
            cache.put(key, value)
        finally:
            del self._pending[flight]
            done.set()
        return value

    async def activation(self, record: AnalysisRecord, layer: str) -> torch.Tensor:
        """One layer's exact output for this analysis (one forward up to it, shared by callers)."""

        async def recompute() -> torch.Tensor:
            model = self.model_of(record)
            starts = self.frontiers.get(record.analysis_id) or ()
            maps, stopped = await self.queue.run(
                resume_activations, model, record.input, [layer], starts
            )
            if stopped is not None:
                # Read again: other recomputes of this analysis may have stopped meanwhile.
                kept = self.frontiers.get(record.analysis_id) or ()
                self.frontiers.put(record.analysis_id, with_frontier(kept, stopped))
            return maps[layer]

        return await self._once(self.activations, (record.analysis_id, layer), recompute)

    async def unit_math(
        self, record: AnalysisRecord, layer: str, unit: tuple[int, ...]
    ) -> UnitMath:
        """One unit's arithmetic, redone from the layer's real input (one forward up to it)."""
        return await self.layer_math(record, explain_unit, layer, unit)

    async def layer_math(
        self, record: AnalysisRecord, view: Callable[..., T], layer: str, *unit: object
    ) -> T:
        """``view(program, batch, layer, *unit)`` on this analysis's input, in the queue: a unit's
        arithmetic, its im2col row, its folded batch norm."""
        model = self.model_of(record)
        batch = model.batch(record.input.unsqueeze(0))
        return await self.queue.run(view, model.program, batch, layer, *unit)

    async def atlas(self, record: AnalysisRecord, layer: str) -> Atlas:
        """The layer's atlas PNG with its per-tile ranges (encoded once, then cached)."""

        async def encode() -> Atlas:
            activation = await self.activation(record, layer)
            return await self.queue.run(feature_map_atlas, activation.float().numpy())

        return await self._once(self.atlases, (record.analysis_id, layer), encode)

    async def input_png(self, record: AnalysisRecord) -> bytes:
        """The exact image the network saw (after resize/crop or MNIST-style centring)."""
        cached = self.inputs.get(record.analysis_id)
        if cached is not None:
            return cached
        spec = record.preprocess or self.model_of(record).spec.preprocess
        png = png_bytes(denormalize(record.input, spec))
        self.inputs.put(record.analysis_id, png)
        return png
