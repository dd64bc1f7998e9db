"""What only the Redis store has: several workers writing at once, fields a hash can lose, a
server that does not answer. The semantics both stores share are tested in test_record_store."""

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import anyio
import pytest
from redis.asyncio import Redis

from app.launch import free_port, running_redis
from app.services.records import record_to_fields
from app.services.shared_records import (
    CLIENT_BYTES,
    CLIENT_RECORDS,
    RECORD_BYTES,
    RECORD_INDEX,
    RECORD_KEY,
    RECORDS_BY_AGE,
    SharedRecords,
)
from tests.services.test_record_store import record, size_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throwaway redis-server of its own (scripts/install-test-deps.sh installs it)."""
    with running_redis() as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


async def recount(redis: Redis) -> tuple[int, Counter[str]]:
    """Bytes of the record hashes held, all and per client, summed from the hashes themselves;
    checks that the index and both age orders name exactly those records."""
    index = {
        key.decode(): entry.decode() for key, entry in (await redis.hgetall(RECORD_INDEX)).items()
    }
    stored = {key.decode() async for key in redis.scan_iter(RECORD_KEY.format("*"))}
    assert stored == {RECORD_KEY.format(analysis_id) for analysis_id in index}
    assert {m.decode() for m in await redis.zrange(RECORDS_BY_AGE, 0, -1)} == set(index)
    per_client: Counter[str] = Counter()
    owners: dict[str, set[str]] = {}
    for analysis_id, entry in index.items():
        size, client = entry.split(" ", 1)
        meta, inputs = await redis.hmget(RECORD_KEY.format(analysis_id), ["meta", "input"])
        assert int(size) == len(meta) + len(inputs)
        per_client[client] += int(size)
        owners.setdefault(client, set()).add(analysis_id)
    for client, ids in owners.items():
        assert {m.decode() for m in await redis.zrange(CLIENT_RECORDS.format(client), 0, -1)} == ids
    return sum(per_client.values()), per_client


async def test_workers_writing_at_once_keep_the_counters_exact(
    redis: Redis, redis_url: str
) -> None:
    """Four workers, six clients, 96 puts at once: some records put again by other clients,
    evictions all along. Afterwards every counter equals the sum over the records held."""
    one = max(size_of(record(i)) for i in range(200))

    async def upload(workers: list[SharedRecords], client: int) -> None:
        for step in range(16):
            index = 100 + step % 4 if step % 3 == 0 else 20 * client + step
            await workers[(client + step) % 4].put(record(index), f"10.0.0.{client}")

    async with AsyncExitStack() as pools:
        workers = [
            SharedRecords(
                await pools.enter_async_context(Redis.from_url(redis_url)), 12 * one, 0.25
            )
            for _ in range(4)
        ]
        async with anyio.create_task_group() as group:
            for client in range(6):
                group.start_soon(upload, workers, client)
    total, per_client = await recount(redis)
    assert int(await redis.get(RECORD_BYTES)) == total <= 12 * one
    counters = {k.decode(): int(v) for k, v in (await redis.hgetall(CLIENT_BYTES)).items()}
    assert counters == per_client
    assert max(per_client.values()) <= 3 * one
    count = await redis.hlen(RECORD_INDEX)
    assert await SharedRecords(redis, 12 * one, 0.25).stats() == (count, total)
    assert 0 < count <= 12


@pytest.mark.parametrize("name", ["meta", "input", "checksum"])
async def test_a_hash_that_lost_a_field_is_removed_with_its_counts(redis: Redis, name: str) -> None:
    store = SharedRecords(redis, 1 << 20, 1.0)
    item, other = record(7), record(8)
    await store.put(item, "a")
    await store.put(other, "b")
    await redis.hdel(RECORD_KEY.format(item.analysis_id), name)
    assert await store.get(item.analysis_id) is None
    assert await redis.exists(RECORD_KEY.format(item.analysis_id)) == 0
    assert await store.stats() == (1, size_of(other))
    assert await recount(redis) == (size_of(other), Counter({"b": size_of(other)}))


async def test_a_record_gone_from_under_its_counts_is_uncounted(redis: Redis) -> None:
    """E.g. deleted by hand: the next read finds the counts without the hash and drops them."""
    store = SharedRecords(redis, 1 << 20, 1.0)
    item = record(7)
    await store.put(item, "a")
    await redis.delete(RECORD_KEY.format(item.analysis_id))
    assert await store.stats() == (1, size_of(item))
    assert await store.get(item.analysis_id) is None
    assert await store.stats() == (0, 0)
    assert await redis.hgetall(CLIENT_BYTES) == {}


async def test_a_record_an_older_version_left_is_removed_not_served(redis: Redis) -> None:
    """Before records were sealed and counted, a hash held only meta and input, with a TTL."""
    item = record(9)
    key = RECORD_KEY.format(item.analysis_id)
    await redis.hset(key, mapping=record_to_fields(item))
    await redis.expire(key, 3600)
    assert await SharedRecords(redis, 1 << 20, 1.0).get(item.analysis_id) is None
    assert await redis.exists(key) == 0


async def test_a_server_that_does_not_answer_means_a_miss_and_a_skipped_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Redis(port=free_port(), socket_connect_timeout=0.5) as nobody:
        store = SharedRecords(nobody, 1 << 20, 1.0)
        with caplog.at_level(logging.WARNING, logger="convlens.redis"):
            assert await store.get(record(1).analysis_id) is None
            await store.put(record(1), "a")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"shared record {record(1).analysis_id} not read",
        f"shared record {record(1).analysis_id} not written",
    ]
