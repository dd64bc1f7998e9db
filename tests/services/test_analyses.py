"""AnalysisService: batched forwards equal single ones; repeats are cached; tensors on the CPU."""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import torch

from app.core.analysis import analyze
from app.core.cache import ByteLRU
from app.core.layer_program import Frontier
from app.core.registry import ModelRegistry
from app.services.analyses import (
    AnalysisNotFoundError,
    AnalysisService,
    model_input,
    tensor_bytes,
    with_frontier,
)
from app.services.inference import InferenceQueue
from app.services.record_store import RecordStore
from app.services.records import AnalysisRecord
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio

PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")
MAX_PIXELS = 40_000_000


def service_for(
    registry: ModelRegistry, queue: InferenceQueue, shared: RecordStore | None = None
) -> AnalysisService:
    return AnalysisService(
        registry,
        queue,
        max_image_pixels=MAX_PIXELS,
        record_bytes=256 << 20,
        activation_bytes=1 << 30,
        atlas_bytes=64 << 20,
        shared=shared,
    )


async def test_waiting_uploads_share_one_forward_that_equals_single_forwards(
    registry: ModelRegistry,
) -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=16, max_batch=len(PHOTOS), batch_wait=5.0)
    service = service_for(registry, queue)
    model = registry.get("efficientnet-lite0")
    records = {}

    async def submit(photo: str) -> None:
        records[photo], cached = await service.analyze(model, sample_photo(photo))
        assert not cached

    async with anyio.create_task_group() as group:
        for photo in PHOTOS:
            group.start_soon(submit, photo)
    assert queue.batch_sizes == [len(PHOTOS)]
    for photo in PHOTOS:
        inputs = model_input(sample_photo(photo), MAX_PIXELS, model.spec.preprocess)
        single = analyze(model, inputs, keep=("_conv_stem", "_blocks.7", "_fc"))
        record = records[photo]
        assert torch.equal(record.input, inputs)
        torch.testing.assert_close(
            torch.tensor(record.logits), torch.tensor(single.logits), rtol=0, atol=1e-5
        )
        assert [p.index for p in record.predictions] == [p.index for p in single.predictions]
        for together, alone in zip(record.layers, single.layers, strict=True):
            assert (together.name, together.shape) == (alone.name, alone.shape)
            stats = [together.min, together.max, together.mean, together.zero_fraction]
            assert stats == pytest.approx(
                [alone.min, alone.max, alone.mean, alone.zero_fraction], rel=0, abs=1e-5
            )
        for layer in ("_conv_stem", "_blocks.7", "_fc"):
            served = await service.activation(record, layer)
            assert served.device.type == "cpu"
            torch.testing.assert_close(served, single.activations[layer], rtol=0, atol=1e-5)


async def test_a_repeat_upload_is_the_cached_record_without_a_forward(
    registry: ModelRegistry,
) -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=4)
    service = service_for(registry, queue)
    model = registry.get("lenet5-mnist")
    first, first_cached = await service.analyze(model, sample_photo("camera.png"))
    again, again_cached = await service.analyze(model, sample_photo("camera.png"))
    assert (first_cached, again_cached) == (False, True)
    assert again is first
    assert queue.batch_sizes == [1]
    assert await service.find(first.analysis_id) is first


async def test_the_store_keeps_the_pixels_and_this_process_the_input(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """The durable record holds the decoder's uint8 pixels (a quarter of the float input) and
    gives the input back to the bit; the copy in memory holds the input alone."""
    store = RecordStore(tmp_path / "records.sqlite3", 1 << 30, 1.0)
    service = service_for(registry, InferenceQueue(concurrency=1, max_waiting=4), store)
    model = registry.get("efficientnet-lite0")
    record, _ = await service.analyze(model, sample_photo("coffee.png"))
    assert record.pixels is None and record.preprocess == model.spec.preprocess
    stored = store.get_now(record.analysis_id)
    assert stored is not None and stored.pixels is not None
    assert stored.pixels.dtype == torch.uint8 and stored.pixels.shape == (3, 224, 224)
    assert torch.equal(stored.input, record.input)
    assert torch.equal(
        stored.input, model_input(sample_photo("coffee.png"), MAX_PIXELS, model.spec.preprocess)
    )
    assert store.stats()[1] < 200_000  # pixels 150,528 bytes, the rest statistics and logits
    store.close()


async def stored_then_changed(
    registry: ModelRegistry, store: RecordStore, change: Callable[[AnalysisRecord], AnalysisRecord]
) -> tuple[AnalysisRecord, AnalysisService]:
    """Analyze a digit with the store, rewrite its stored record with ``change``, and return the
    analysis and a fresh service on the same store (another worker, or the server restarted)."""
    model = registry.get("lenet5-mnist")
    made, _ = await service_for(registry, InferenceQueue(1, 4), store).analyze(
        model, sample_photo("camera.png")
    )
    stored = store.get_now(made.analysis_id)
    assert stored is not None and stored.weights_sha256 == model.weights_sha256
    store.put_now(change(stored), "")
    return made, service_for(registry, InferenceQueue(1, 4), store)


@pytest.mark.parametrize(
    "change",
    [
        lambda stored: replace(stored, weights_sha256="0" * 64),
        lambda stored: replace(stored, preprocess=replace(stored.preprocess, mean=(0.5,))),
    ],
    ids=["other-weights", "other-preprocessing"],
)
async def test_a_stored_record_of_another_version_of_the_model_is_not_served(
    registry: ModelRegistry, tmp_path: Path, change: Callable[[AnalysisRecord], AnalysisRecord]
) -> None:
    """Its statistics would not match the layers recomputed now: the permalink is gone, and
    uploading the image again makes the record anew."""
    store = RecordStore(tmp_path / "records.sqlite3", 1 << 30, 1.0)
    made, fresh = await stored_then_changed(registry, store, change)
    with pytest.raises(AnalysisNotFoundError):
        await fresh.find(made.analysis_id)
    model = registry.get("lenet5-mnist")
    again, cached = await fresh.analyze(model, sample_photo("camera.png"))
    assert not cached and again.analysis_id == made.analysis_id and again.layers == made.layers
    renewed = store.get_now(made.analysis_id)
    assert renewed is not None and torch.equal(renewed.input, made.input)
    assert (renewed.weights_sha256, renewed.preprocess) == (
        model.weights_sha256,
        model.spec.preprocess,
    )
    store.close()


async def test_a_record_older_than_the_version_fields_is_served(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    store = RecordStore(tmp_path / "records.sqlite3", 1 << 30, 1.0)
    older = lambda stored: replace(stored, weights_sha256=None, preprocess=None, pixels=None)  # noqa: E731
    made, fresh = await stored_then_changed(registry, store, older)
    assert (await fresh.find(made.analysis_id)).layers == made.layers
    store.close()


async def test_identical_uploads_in_flight_share_one_forward(registry: ModelRegistry) -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=8, max_batch=8, batch_wait=0.2)
    service = service_for(registry, queue)
    model = registry.get("lenet5-mnist")
    cached_flags = []

    async def submit() -> None:
        cached_flags.append((await service.analyze(model, sample_photo("camera.png")))[1])

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(submit)
    assert sorted(cached_flags) == [False, True, True]
    assert queue.batch_sizes == [1]


@pytest.mark.parametrize("analysis_id", ["", "x" * 32, "0" * 31, "0" * 33])
async def test_find_refuses_ids_that_no_analysis_can_have(
    registry: ModelRegistry, analysis_id: str
) -> None:
    service = service_for(registry, InferenceQueue(concurrency=1, max_waiting=1))
    with pytest.raises(AnalysisNotFoundError):
        await service.find(analysis_id)


async def test_a_layer_is_computed_once_for_concurrent_readers_and_alone(
    registry: ModelRegistry,
) -> None:
    queue = InferenceQueue(concurrency=2, max_waiting=8)
    service = service_for(registry, queue)
    model = registry.get("efficientnet-lite0")
    record, _ = await service.analyze(model, sample_photo("coffee.png"))
    service.activations = ByteLRU(1 << 30, tensor_bytes)
    completed_before = queue.completed
    maps = []

    async def read() -> None:
        maps.append(await service.activation(record, "_blocks.4"))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(read)
    assert queue.completed == completed_before + 1
    assert maps[0] is maps[1] is maps[2]
    assert len(service.activations) == 1
    single = analyze(model, record.input, keep=["_blocks.4"])
    assert torch.equal(maps[0], single.activations["_blocks.4"])


async def test_a_deeper_layer_starts_where_the_last_recompute_stopped(
    registry: ModelRegistry,
) -> None:
    """Opening `_blocks.2` keeps where that forward stopped; `_blocks.9` then runs only the layers
    in between, and both maps equal a forward from the input."""
    service = service_for(registry, InferenceQueue(concurrency=1, max_waiting=8))
    model = registry.get("efficientnet-lite0")
    record, _ = await service.analyze(model, sample_photo("chelsea.png"))
    assert service.frontiers.get(record.analysis_id) is None
    early = await service.activation(record, "_blocks.2")
    (stopped,) = service.frontiers.get(record.analysis_id) or ()
    assert stopped.position == model.program.tap_position(model.program.by_name["_blocks.2"].point)
    late = await service.activation(record, "_blocks.9")
    kept = service.frontiers.get(record.analysis_id) or ()
    assert kept[0].position == stopped.position
    assert kept[-1].position > stopped.position
    full = analyze(model, record.input, keep=["_blocks.2", "_blocks.9"])
    assert torch.equal(early, full.activations["_blocks.2"])
    assert torch.equal(late, full.activations["_blocks.9"])


async def test_students_sharing_an_analysis_each_resume_at_their_own_depth(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A opens `_blocks.2`, B (same photo) `_blocks.9`, then A `_blocks.5`: A's second forward
    starts where A's first stopped, not at the input (with one frontier per analysis it started
    at the input, B's being past `_blocks.5`), and its maps equal a forward from the input."""
    service = service_for(registry, InferenceQueue(concurrency=1, max_waiting=8))
    model = registry.get("efficientnet-lite0")
    record, _ = await service.analyze(model, sample_photo("coffee.png"))
    program = model.program
    started_at: list[int | None] = []
    run_until_stopped = program.run_until_stopped

    def watched(batch: torch.Tensor, sink, start=None):  # type: ignore[no-untyped-def]
        started_at.append(None if start is None else start.position)
        return run_until_stopped(batch, sink, start)

    monkeypatch.setattr(program, "run_until_stopped", watched)
    layers = ("_blocks.2", "_blocks.9", "_blocks.5")
    for layer in layers:
        await service.activation(record, layer)
    tap = {name: program.tap_position(program.by_name[name].point) for name in layers}
    assert started_at == [None, tap["_blocks.2"], tap["_blocks.2"]]
    kept = service.frontiers.get(record.analysis_id) or ()
    assert [frontier.position for frontier in kept] == [tap[name] for name in layers]
    full = analyze(model, record.input, keep=["_blocks.5"])
    assert torch.equal(await service.activation(record, "_blocks.5"), full.activations["_blocks.5"])


def test_an_analysis_keeps_its_most_recent_frontiers_one_per_position() -> None:
    """`with_frontier`: a new frontier replaces one at the same position; the oldest go first."""
    kept: tuple[Frontier, ...] = ()
    for position in (5, 9, 2, 9, 7):
        kept = with_frontier(kept, Frontier(position, {"at": torch.tensor([position])}), limit=3)
    assert [frontier.position for frontier in kept] == [2, 9, 7]
    assert kept[1].values["at"].item() == 9
