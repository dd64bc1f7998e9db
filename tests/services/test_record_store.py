"""Both record stores, on disk and in Redis: exact round trips, byte bounds, per-client shares,
corrupt records; then what only the SQLite file has."""

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
import torch
from redis.asyncio import Redis

from app.core.analysis import LayerStats, Prediction
from app.launch import running_redis
from app.services.record_store import RecordStore
from app.services.records import AnalysisRecord, record_to_fields
from app.services.shared_records import RECORD_KEY, SharedRecords

Store = RecordStore | SharedRecords


def record(index: int, values: int = 1000) -> AnalysisRecord:
    generator = torch.Generator().manual_seed(index)
    return AnalysisRecord(
        analysis_id=f"{index:032x}",
        model_id="m",
        content_sha256="c" * 64,
        input=torch.randn((1, 1, values), generator=generator),
        logits=[0.25, -1.5],
        predictions=[Prediction(0, "zero", 0.85)],
        layers=[LayerStats("conv", "conv", (1, 2, 2), -1.0, 2.0, 0.5, 0.25)],
        created_at=1.0 + index,
    )


def size_of(item: AnalysisRecord) -> int:
    return sum(len(value) for value in record_to_fields(item).values())


@dataclass
class SqliteStores:
    """Stores over one SQLite file; each `open` is a fresh connection, as after a restart."""

    path: Path
    opened: list[RecordStore] = field(default_factory=list)

    def open(self, capacity: int, share: float) -> RecordStore:
        self.opened.append(RecordStore(self.path, capacity, share))
        return self.opened[-1]

    async def stats(self, store: Store) -> tuple[int, int]:
        assert isinstance(store, RecordStore)
        return store.stats()

    async def rewrite(self, analysis_id: str, name: str, change: Callable[[bytes], bytes]) -> None:
        with sqlite3.connect(self.path) as db:
            query = f"SELECT {name} FROM records WHERE analysis_id = ?"
            (value,) = db.execute(query, (analysis_id,)).fetchone()
            db.execute(
                f"UPDATE records SET {name} = ? WHERE analysis_id = ?", (change(value), analysis_id)
            )


@dataclass
class RedisStores:
    """Stores over one Redis server; each `open` is a fresh connection pool, as another worker."""

    url: str
    pools: list[Redis] = field(default_factory=list)

    def open(self, capacity: int, share: float) -> SharedRecords:
        self.pools.append(Redis.from_url(self.url))
        return SharedRecords(self.pools[-1], capacity, share)

    async def stats(self, store: Store) -> tuple[int, int]:
        assert isinstance(store, SharedRecords)
        return await store.stats()

    async def rewrite(self, analysis_id: str, name: str, change: Callable[[bytes], bytes]) -> None:
        redis, key = self.pools[0], RECORD_KEY.format(analysis_id)
        await redis.hset(key, name, change(await redis.hget(key, name)))


Stores = SqliteStores | RedisStores


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server of its own (scripts/install-test-deps.sh installs it)."""
    with running_redis() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.e2e)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "sqlite":
        sqlite_stores = SqliteStores(tmp_path / "records.sqlite3")
        yield sqlite_stores
        for store in sqlite_stores.opened:
            store.close()
        return
    redis_stores = RedisStores(request.getfixturevalue("redis_url"))
    async with Redis.from_url(redis_stores.url) as redis:
        await redis.flushdb()
    yield redis_stores
    for pool in redis_stores.pools:
        await pool.aclose()


def cut_short(blob: bytes) -> bytes:
    """A write that stopped halfway."""
    return blob[: len(blob) // 2]


def flip_a_byte(blob: bytes) -> bytes:
    """Near the end of the input: the tensor still parses, only the checksum can tell."""
    flipped = bytearray(blob)
    flipped[-3] ^= 0x40
    return bytes(flipped)


@pytest.mark.anyio
async def test_a_record_comes_back_bit_for_bit_in_a_fresh_store(stores: Stores) -> None:
    original = record(1)
    await stores.open(1 << 20, 1.0).put(original, "a")
    again = await stores.open(1 << 20, 1.0).get(original.analysis_id)
    assert again is not None
    assert torch.equal(again.input, original.input)
    assert (again.logits, again.predictions, again.layers, again.created_at) == (
        original.logits,
        original.predictions,
        original.layers,
        original.created_at,
    )
    assert await stores.open(1 << 20, 1.0).get("f" * 32) is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("puts", "kept"),
    [((0, 1, 2, 3, 4), [2, 3, 4]), ((0, 1, 2, 0, 3), [0, 2, 3])],
    ids=["oldest-out", "put-again-is-newest"],
)
async def test_the_oldest_records_go_first_when_the_store_is_full(
    stores: Stores, puts: tuple[int, ...], kept: list[int]
) -> None:
    """Each put from another client, so only the capacity binds; a record put again (by
    another client) counts once and as the newest."""
    one = size_of(record(0))
    store = stores.open(3 * one + one // 2, 1.0)
    for step, index in enumerate(puts):
        await store.put(record(index), f"client-{step}")
        await anyio.sleep(0.002)
    held = [i for i in range(5) if await store.get(record(i).analysis_id) is not None]
    assert held == kept
    assert await stores.stats(store) == (3, 3 * one)


@pytest.mark.anyio
async def test_one_busy_client_evicts_only_its_own_records(stores: Stores) -> None:
    """A class's links survive one client uploading in a loop: it only pushes out its own."""
    one = max(size_of(record(i)) for i in (*range(50), 1009))  # JSON lengths differ by a byte
    store = stores.open(20 * one + 10, 0.1)  # 2 records per client
    for student in range(10):
        await store.put(record(1000 + student), f"student-{student}")
    for index in range(50):
        await store.put(record(index), "loop")
        await anyio.sleep(0.001)
    assert all([await store.get(record(1000 + s).analysis_id) for s in range(10)])
    assert [i for i in range(50) if await store.get(record(i).analysis_id)] == [48, 49]
    held = sum(size_of(record(i)) for i in (*range(1000, 1010), 48, 49))
    assert await stores.stats(store) == (12, held)


@pytest.mark.anyio
async def test_a_record_larger_than_a_share_is_not_kept(stores: Stores) -> None:
    store = stores.open(10 * size_of(record(0)), 0.1)
    await store.put(record(1, values=5000), "a")
    assert await stores.stats(store) == (0, 0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "change"),
    [("input", cut_short), ("meta", cut_short), ("input", flip_a_byte), ("checksum", cut_short)],
)
async def test_corrupt_or_cut_records_are_skipped_and_removed(
    stores: Stores, name: str, change: Callable[[bytes], bytes]
) -> None:
    store = stores.open(1 << 20, 1.0)
    item, other = record(7), record(8)
    await store.put(item, "a")
    await store.put(other, "a")
    await stores.rewrite(item.analysis_id, name, change)
    assert await store.get(item.analysis_id) is None
    assert await stores.stats(store) == (1, size_of(other))
    assert await store.get(other.analysis_id) is not None


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT COALESCE(SUM(nbytes), 0) FROM records", ()),
        ("SELECT COALESCE(SUM(nbytes), 0) FROM records WHERE client = ?", ("10.0.0.1",)),
        ("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM records", ()),
    ],
)
def test_byte_sums_read_an_index_never_the_rows_blobs(
    tmp_path: Path, query: str, params: tuple[str, ...]
) -> None:
    """Every put sums the bytes held twice: over the table's rows (and their overflow pages) that
    took 17 ms at 3,000 Lite0 records; over a covering index it takes well under one."""
    RecordStore(tmp_path / "records.db", 10**9, 0.5).put_now(record(1), "10.0.0.1")
    with sqlite3.connect(tmp_path / "records.db") as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {query}", params))
    assert "COVERING INDEX" in plan
