"""Analysis records shared through Redis, so any worker or host can serve any permalink.

Only records travel (input tensor + predictions + layer stats, a few hundred kB at most); every
worker recomputes activations and atlases locally from them, exactly. Redis trouble never fails a
request: a read becomes a miss and a write is skipped, both logged.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.services.records import (
    AnalysisRecord,
    RecordFormatError,
    record_from_fields,
    record_to_fields,
)

logger = logging.getLogger("convlens.redis")

RECORD_KEY = "convlens:analysis:{}"


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
    """Get and put analysis records in Redis, each kept `ttl_seconds` after its last write."""

    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    async def get(self, analysis_id: str) -> AnalysisRecord | None:
        try:
            fields = await self.client.hgetall(RECORD_KEY.format(analysis_id))
        except RedisError as error:
            logger.warning("shared record %s not read: %s", analysis_id, error)
            return None
        if not fields:
            return None
        try:
            return record_from_fields(fields)
        except RecordFormatError as error:
            logger.warning("shared record %s ignored: %s", analysis_id, error)
            return None

    async def put(self, record: AnalysisRecord, client: str = "") -> None:
        """Store the record (Redis bounds records by their TTL, not per client)."""
        key = RECORD_KEY.format(record.analysis_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=record_to_fields(record))
                pipe.expire(key, self.ttl_seconds)
                await pipe.execute()
        except RedisError as error:
            logger.warning("shared record %s not written: %s", record.analysis_id, error)
