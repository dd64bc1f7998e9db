"""What the attribution methods keep per served model, built once on first use.

Random twins (for the effective-RF and filter comparisons), a private trained copy per model for
the background feature-visualization jobs (so they never share hooks with served requests), the
shipped top-patch files and the first-layer filter comparison. Everything is built lazily under a
lock: a server that never shows these costs nothing extra.
"""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from app.core.attribution.feature_vis import FeatureVisOptions, visualize_channel
from app.core.attribution.feature_vis_store import (
    FeatureVisJobs,
    FeatureVisStore,
    StoredFeatureVis,
    feature_vis_key,
)
from app.core.attribution.occlusion import LiveOcclusion, live_occlusion
from app.core.attribution.progress import Progress
from app.core.attribution.random_filters import FilterComparison, compare_first_layer_filters
from app.core.attribution.random_init import architecture_factory, random_init_copy, trained_copy
from app.core.attribution.top_patches import TopPatchesError, TopPatchSet, load_top_patches
from app.core.cache import ByteLRU
from app.core.layer_program import program_of
from app.core.registry import LoadedModel

RANDOM_SEED = 0
"""Seed of every random twin: the same "untrained" network on every server and every run."""

T = TypeVar("T")


def model_feature_vis_key(
    model: LoadedModel, layer: str, channel: int, options: FeatureVisOptions
) -> str:
    """The store key of one channel's visualization for this model's current weights."""
    weights = model.weights_sha256
    return feature_vis_key(model.spec.id, weights, layer, channel, options)


def render_feature_vis(
    model: LoadedModel,
    network: nn.Module,
    layer: str,
    channel: int,
    options: FeatureVisOptions,
    store: FeatureVisStore,
    progress: Progress | None = None,
) -> StoredFeatureVis:
    """Optimise one channel's image on ``network`` (a copy of ``model``'s) and store it."""
    pre = model.spec.preprocess
    result = visualize_channel(
        network, layer, channel, model.input_shape, pre.mean, pre.std, options, progress
    )
    key = model_feature_vis_key(model, layer, channel, options)
    return store.put(key, result, model.spec.id)


def private_copy(model: LoadedModel) -> nn.Module:
    """A separate trained instance for long jobs, with a program like the served model's."""
    copy = trained_copy(model.module, architecture_factory(model))
    copy.to(memory_format=model.memory_format)
    program_of(copy, like=model.program)
    return copy


class AttributionResources:
    """Per-model caches and the feature-visualization worker of one app.

    ``feature_vis_queue`` jobs may be queued or running, ``feature_vis_per_client`` of them
    started by one client; the disk store keeps at most ``feature_vis_bytes`` (None: no bound).
    """

    def __init__(
        self,
        models_dir: Path,
        feature_vis_dir: Path,
        feature_vis_queue: int,
        live_occlusion_bytes: int = 128 * 1024 * 1024,
        feature_vis_per_client: int | None = None,
        feature_vis_bytes: int | None = None,
    ) -> None:
        self.models_dir = models_dir
        # One image's clean forward per analysis being occluded live (a student dragging).
        self.live: ByteLRU[LiveOcclusion] = ByteLRU(live_occlusion_bytes, lambda live: live.nbytes)
        self.jobs = FeatureVisJobs(
            FeatureVisStore(feature_vis_dir, feature_vis_bytes),
            max_pending=feature_vis_queue,
            per_client=feature_vis_per_client,
        )
        self._cache: dict[tuple[str, str], object] = {}
        self._lock = threading.RLock()  # a builder may need another cached item

    def _once(self, kind: str, model: LoadedModel, build: Callable[[], T]) -> T:
        key = (kind, model.spec.id)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]  # type: ignore[return-value]

    def random_twin(self, model: LoadedModel) -> nn.Module:
        """The model's architecture, randomly initialised with ``RANDOM_SEED``."""

        def build() -> nn.Module:
            twin = random_init_copy(architecture_factory(model), RANDOM_SEED, model.device)
            twin.to(memory_format=model.memory_format)
            program_of(twin, like=model.program)
            return twin

        return self._once("twin", model, build)

    def first_layer_filters(self, model: LoadedModel, layer: str) -> FilterComparison:
        """Conv module ``layer`` (``first_conv_layer``) of the model beside its random twin's."""
        return self._once(
            "filters",
            model,
            lambda: compare_first_layer_filters(model.module, self.random_twin(model), layer),
        )

    def top_patches(self, model: LoadedModel) -> TopPatchSet:
        """The shipped top patches of this model's weights.

        Raises:
            TopPatchesError: none shipped, or they belong to other weights (remembered).
        """

        def load() -> TopPatchSet | TopPatchesError:
            path = model.spec.top_patches
            if path is None:
                return TopPatchesError(f"no top-activating patches ship with {model.spec.id!r}")
            try:
                return load_top_patches(path, model.weights_sha256)
            except TopPatchesError as error:
                return error

        result = self._once("top_patches", model, load)
        if isinstance(result, TopPatchesError):
            raise result
        return result

    def feature_vis(
        self,
        model: LoadedModel,
        layer: str,
        channel: int,
        options: FeatureVisOptions,
        client: str = "",
    ) -> StoredFeatureVis | Progress:
        """The stored visualization, or the progress of the background job that makes it.

        Raises:
            FeatureVisBusyError: the background queue, or this client's share of it, is full.
            FeatureVisFailedError: the last attempt failed.
        """

        def compute(progress: Progress) -> StoredFeatureVis:
            copy = self._once("private", model, lambda: private_copy(model))
            store = self.jobs.store
            return render_feature_vis(model, copy, layer, channel, options, store, progress)

        key = model_feature_vis_key(model, layer, channel, options)
        return self.jobs.request(key, compute, client)

    def live_occlusion(
        self, model: LoadedModel, analysis_id: str, inputs: torch.Tensor
    ) -> LiveOcclusion:
        """The analysis's image prepared for live occlusion (kept while it is being dragged on)."""
        live = self.live.get(analysis_id)
        if live is None:
            live = live_occlusion(model.module, inputs)
            self.live.put(analysis_id, live)
        return live

    def close(self) -> None:
        self.jobs.shutdown()
