"""Analysis records shared through Redis, so any worker or host can serve any permalink.

Only records travel (input tensor + predictions + layer stats, a few hundred kB at most); every
worker recomputes activations and atlases locally from them, exactly. The semantics are the
durable store's (`record_store`): records sealed with a checksum, bounded in bytes, oldest first
out, each client at most a share. Every put and every removal is one Lua script, so workers on
several hosts writing at once never make the byte counters drift; a record is served only if it
is counted and its checksum agrees, else it is removed. The scripts reach the keys of the records
they evict, so the store needs one Redis server (not a Cluster). Redis trouble never fails a
request: a read becomes a miss and a write is skipped, both logged.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.services.records import AnalysisRecord, RecordFormatError, seal, unseal

logger = logging.getLogger("convlens.redis")

RECORD_KEY = "convlens:analysis:{}"
"""A record's hash: meta, input, checksum (`records.SealedRecord`)."""
RECORD_INDEX = "convlens:records"
"""Every counted record: id → "<bytes> <client>"."""
RECORDS_BY_AGE = "convlens:records-by-age"
CLIENT_RECORDS = "convlens:records-of:{}"
RECORD_BYTES = "convlens:record-bytes"
CLIENT_BYTES = "convlens:record-bytes-of"
RECORD_SEQUENCE = "convlens:record-sequence"
"""Orders records across hosts whose clocks disagree."""

REMOVE_FUNCTION = """
-- KEYS: the index, records by age, all bytes, bytes per client (then the script's own).
-- ARGV: the record key prefix, the client records key prefix (then the script's own).
local function remove(id)
  redis.call('DEL', ARGV[1] .. id)
  local entry = redis.call('HGET', KEYS[1], id)
  if not entry then return end
  local space = string.find(entry, ' ', 1, true)
  local size = tonumber(string.sub(entry, 1, space - 1))
  local client = string.sub(entry, space + 1)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', ARGV[2] .. client, id)
  redis.call('DECRBY', KEYS[3], size)
  if redis.call('HINCRBY', KEYS[4], client, -size) <= 0 then
    redis.call('HDEL', KEYS[4], client)
  end
end
"""

REMOVE_SCRIPT = (
    REMOVE_FUNCTION
    + """
-- KEYS[5]: the record's hash. ARGV[3]: its id.
remove(ARGV[3])
"""
)

PUT_SCRIPT = (
    REMOVE_FUNCTION
    + """
-- KEYS[5..7]: the sequence, the record's hash, the client's records by age.
-- ARGV[3..10]: id, client, bytes, meta, input, checksum, capacity, client capacity.
local id, client, size = ARGV[3], ARGV[4], tonumber(ARGV[5])
remove(id)
local order = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[6], 'meta', ARGV[6], 'input', ARGV[7], 'checksum', ARGV[8])
redis.call('HSET', KEYS[1], id, ARGV[5] .. ' ' .. client)
redis.call('ZADD', KEYS[2], order, id)
redis.call('ZADD', KEYS[7], order, id)
redis.call('INCRBY', KEYS[3], size)
redis.call('HINCRBY', KEYS[4], client, size)
local function evict(by_age, held, limit)
  while tonumber(held() or 0) > limit do
    local oldest = redis.call('ZRANGE', by_age, 0, 0)[1]
    if not oldest then return end
    remove(oldest)
    redis.call('ZREM', by_age, oldest)  -- progress even if the index lost it
  end
end
evict(KEYS[7], function() return redis.call('HGET', KEYS[4], client) end, tonumber(ARGV[10]))
evict(KEYS[2], function() return redis.call('GET', KEYS[3]) end, tonumber(ARGV[9]))
"""
)


@asynccontextmanager
async def redis_client(url: str, timeout: float) -> AsyncIterator[Redis]:
    """A checked connection pool for `url`; a server that does not answer stops the start-up.

    Raises:
        RuntimeError: Redis did not answer PING.
    """
    client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        try:
            await client.ping()
        except RedisError as error:
            raise RuntimeError(f"CONVLENS_REDIS_URL: Redis does not answer ({error})") from error
        yield client
    finally:
        await client.aclose()


class SharedRecords:
    """Byte-bounded analysis records in Redis with a per-client share.

    Args:
        client: the connection pool.
        capacity_bytes: all records together at most this many bytes.
        client_share: the fraction of ``capacity_bytes`` one client's records may take.
    """

    _COUNTERS = (RECORD_INDEX, RECORDS_BY_AGE, RECORD_BYTES, CLIENT_BYTES)
    _PREFIXES = (RECORD_KEY.format(""), CLIENT_RECORDS.format(""))

    def __init__(self, client: Redis, capacity_bytes: int, client_share: float) -> None:
        self.client = client
        self.capacity_bytes = capacity_bytes
        self.client_bytes = max(1, int(capacity_bytes * client_share))
        self._put_script = client.register_script(PUT_SCRIPT)
        self._remove_script = client.register_script(REMOVE_SCRIPT)

    async def get(self, analysis_id: str) -> AnalysisRecord | None:
        """The stored record, or None (never stored, evicted, unreadable: then removed)."""
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hmget(RECORD_KEY.format(analysis_id), ["meta", "input", "checksum"])
                pipe.hexists(RECORD_INDEX, analysis_id)
                (meta, inputs, checksum), counted = await pipe.execute()
        except RedisError as error:
            logger.warning("shared record %s not read: %s", analysis_id, error)
            return None
        if not counted and meta is inputs is checksum is None:
            return None
        try:
            if not counted:
                raise RecordFormatError("not counted in the store's bytes")
            text = None if checksum is None else checksum.decode("ascii", "replace")
            return unseal(analysis_id, meta, inputs, text)
        except RecordFormatError as error:
            logger.warning("shared record %s skipped and removed: %s", analysis_id, error)
            await self._remove(analysis_id)
            return None

    async def put(self, record: AnalysisRecord, client: str = "") -> None:
        """Store (or refresh) a record, then evict: the client's oldest beyond its share, then
        the oldest of all beyond the capacity. A record larger than a share is not kept."""
        sealed = seal(record)
        if sealed.nbytes > self.client_bytes:
            return
        keys = (
            *self._COUNTERS,
            RECORD_SEQUENCE,
            RECORD_KEY.format(record.analysis_id),
            CLIENT_RECORDS.format(client),
        )
        arguments = (
            *self._PREFIXES,
            record.analysis_id,
            client,
            sealed.nbytes,
            sealed.meta,
            sealed.input,
            sealed.checksum,
            self.capacity_bytes,
            self.client_bytes,
        )
        try:
            await self._put_script(keys, arguments)
        except RedisError as error:
            logger.warning("shared record %s not written: %s", record.analysis_id, error)

    async def _remove(self, analysis_id: str) -> None:
        keys = (*self._COUNTERS, RECORD_KEY.format(analysis_id))
        try:
            await self._remove_script(keys, (*self._PREFIXES, analysis_id))
        except RedisError as error:
            logger.warning("shared record %s not removed: %s", analysis_id, error)

    async def stats(self) -> tuple[int, int]:
        """(records, bytes) held."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hlen(RECORD_INDEX)
            pipe.get(RECORD_BYTES)
            count, total = await pipe.execute()
        return int(count), int(total or 0)
