"""The edge's durable outbox: what the agent decided, kept on disk before the part is acknowledged.

One SQLite file (WAL journal, ``synchronous=FULL`` for every write that acknowledges a part) holds
**entries**: part results (verdict records), flagged frames (the camera's file with the edge's
inspection: every NG and RETAKE part, a sampled share of OK parts, drift alarms) and change-feed
events. Each entry waits in one **delivery** row per sink (``"server"``, ``"mqtt"``,
``"webhook"`` ...) until that sink has it.

- **Durability**: ``record`` commits a part's entries in one transaction and returns only after
  SQLite has fsynced the write-ahead log, so whatever ``record`` returned survives a SIGKILL (or
  a power cut) at any later moment; a transaction cut short leaves nothing half-written.
  Delivery marks are written with ``synchronous=NORMAL`` (a mark lost in a power cut only makes
  the entry go out once more, and every sink is idempotent).
- **Idempotency**: every entry has a content key (a frame's content id from
  ``thermoscope.storage.identity``, or ``content_key`` of a record's JSON); recording the same key
  again is a no-op that returns the stored entry, and sinks send the key along so that receivers
  drop duplicates (the server finds frames by content; MQTT payloads carry ``id``).
- **Sequence numbers**: an entry may name a counter (an MQTT topic); it takes the counter's next
  value as ``payload["seq"]`` in the same transaction, so numbers survive restarts and a gap a
  consumer sees is a message that was really lost.
- **Order**: ``pending`` gives a sink its *live* entries (recorded in the last
  ``live_window_s``) before its backlog, each oldest first.
- **Bounded disk** (``max_bytes`` of frame files, and ``min_free_bytes`` left on the file
  system): frame files of fully delivered entries are dropped at once. When a new frame does not
  fit, the oldest undelivered **OK samples** are evicted first (their result records stay);
  NG and RETAKE frames, drift alarms and result records are never evicted. A new OK sample that
  still does not fit is not stored (``Stored.refused``); an NG, RETAKE or alarm frame that does not
  fit is refused (not stored, ``Stored.refused == "disk full"``) and the outbox reports
  ``disk_full`` (the agent shows "disk full" on its status) while result records, which carry no
  file, are still written. ``disk_full`` clears when a delivery or eviction makes room.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thermoscope.edge.entries import (
    DeliveryState,
    Depth,
    Kind,
    OutboxError,
    Pending,
    Record,
    Retention,
    Stored,
    canonical,
    content_key,
)

__all__ = [
    "DeliveryState",
    "Depth",
    "Kind",
    "Outbox",
    "OutboxError",
    "Pending",
    "Record",
    "Retention",
    "Stored",
    "content_key",
]

#: The schema version this module writes (``PRAGMA user_version``).
SCHEMA_VERSION = 1
#: Write-ahead log size above which ``checkpoint`` copies it into the database (bytes).
WAL_CHECKPOINT_BYTES = 4 << 20
#: Write-ahead log size above which ``record`` checkpoints itself (nobody else did).
WAL_LIMIT_BYTES = 256 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    retention TEXT NOT NULL,
    created_s REAL NOT NULL,
    payload TEXT NOT NULL,
    filename TEXT,
    data BLOB,
    data_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created_s);
CREATE INDEX IF NOT EXISTS entries_evictable ON entries (retention, id) WHERE data IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    sink TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_s REAL NOT NULL DEFAULT 0,
    done_s REAL,
    error TEXT,
    PRIMARY KEY (entry_id, sink)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink, entry_id)
    WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class _Counts:
    disk_full: bool = False
    evicted: int = 0
    dropped: int = 0
    refused: int = 0
    names: dict[str, int] = field(default_factory=dict)


class Outbox:
    """A durable outbox in one SQLite file (see the module docstring).

    Args:
        path: the database file (created with its folder if missing).
        max_bytes: budget of frame files held, in bytes.
        min_free_bytes: bytes to leave free on the file system (frames that would go below it
            count as not fitting).
        live_window_s: entries younger than this go before the backlog (s).
        clock: the wall clock (Unix time, s).

    Thread-safe: one connection, used under a lock. Use as a context manager or call ``close``.

    Raises:
        OutboxError: the file cannot be opened, is not an outbox, or is of a newer schema.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 2 << 30,
        min_free_bytes: int = 256 << 20,
        live_window_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 0 or min_free_bytes < 0 or live_window_s < 0:
            raise OutboxError(f"{path}: max_bytes, min_free_bytes and live_window_s must be >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.live_window_s = live_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # checkpoints run beside the writer (``checkpoint``), not inside ``record``
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute(f"PRAGMA journal_size_limit={4 * WAL_CHECKPOINT_BYTES}")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"{self.path}: outbox schema {version} is newer than this agent's "
                    f"({SCHEMA_VERSION}); upgrade the agent"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox: {exc}") from None
        self._counts = self._load_counts()
        self._file_bytes = self._held_bytes()

    # ------------------------------------------------------------------ lifecycle

    def checkpoint(self, *, above_bytes: int = WAL_CHECKPOINT_BYTES) -> None:
        """Copy the write-ahead log into the database file when it holds more than
        ``above_bytes``, on a connection of its own, so that ``record`` (on the agent's
        critical path) never does it. Drainers call it after each pass; it never waits for a
        writer (a passive checkpoint) and a later call finishes what it left."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            if wal.stat().st_size <= above_bytes:
                return
        except FileNotFoundError:
            return
        with self._checkpoint_lock:
            try:
                if self._checkpointer is None:
                    self._checkpointer = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False, timeout=30.0
                    )
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: cannot checkpoint: {exc}") from None

    def close(self) -> None:
        """Checkpoint the log and close the file."""
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        with self._lock:
            # another reader may hold the log: it is checkpointed on the next open then
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def record(self, records: Sequence[Record]) -> list[Stored]:
        """Store a part's records in one durable transaction (fsynced before returning).

        Records whose key is already on file are left as they are (``created=False``). Frame
        files that do not fit follow the module's disk policy.

        Raises:
            OutboxError: a record is malformed, or the file cannot be written (nothing of this
                call is stored then).
        """
        for rec in records:
            _check(rec)
        with self._transaction("record"):
            stored = [self._insert(rec) for rec in records]
            self._save_counts()
        self.checkpoint(above_bytes=WAL_LIMIT_BYTES)
        return stored

    @contextlib.contextmanager
    def _transaction(self, what: str, *, durable: bool = True) -> Iterator[None]:
        """One transaction under the lock, fsynced on commit when ``durable``; a failure rolls
        it back, reloads the cached counters and raises ``OutboxError`` naming ``what``."""
        with self._lock:
            try:
                if not durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
                yield
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._counts = self._load_counts()
                self._file_bytes = self._held_bytes()
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"{self.path}: cannot {what}: {exc}") from None
                raise
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def _held_bytes(self) -> int:
        return int(
            self._db.execute("SELECT coalesce(sum(data_bytes), 0) FROM entries").fetchone()[0]
        )

    def _insert(self, rec: Record) -> Stored:
        row = self._db.execute(
            "SELECT id, data IS NOT NULL, payload FROM entries WHERE key = ?", (rec.key,)
        ).fetchone()
        if row is not None:
            seq = json.loads(row[2]).get("seq")
            return Stored(int(row[0]), rec.key, False, bool(row[1]), seq=seq)
        if rec.data is not None and not self._make_room(len(rec.data)):
            if rec.retention is Retention.SAMPLE:
                self._counts.dropped += 1
            else:
                self._counts.refused += 1
                self._counts.disk_full = True
            return Stored(None, rec.key, False, False, "disk full")
        if rec.data is not None and rec.retention is Retention.KEEP:
            self._counts.disk_full = False
        data = rec.data
        payload = dict(rec.payload)
        seq = None
        if rec.sequence is not None:
            seq = self._counts.names.get(rec.sequence, 0) + 1
            self._counts.names[rec.sequence] = seq
            payload["seq"] = seq
        cursor = self._db.execute(
            "INSERT INTO entries (key, kind, retention, created_s, payload, filename, data, "
            "data_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.key,
                rec.kind.value,
                rec.retention.value,
                self._clock(),
                canonical(payload),
                rec.filename,
                data,
                0 if data is None else len(data),
            ),
        )
        entry_id = int(cursor.lastrowid or 0)
        self._db.executemany(
            "INSERT INTO deliveries (entry_id, sink) VALUES (?, ?)",
            [(entry_id, sink) for sink in dict.fromkeys(rec.sinks)],
        )
        if data is not None:
            self._file_bytes += len(data)
        return Stored(entry_id, rec.key, True, data is not None, "", seq)

    def _fits(self, size: int) -> bool:
        if self._file_bytes + size > self.max_bytes:
            return False
        if self.min_free_bytes == 0:
            return True
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return True
        return free - size >= self.min_free_bytes

    def _make_room(self, size: int) -> bool:
        """Evict the oldest OK samples until ``size`` bytes fit; whether they do."""
        while not self._fits(size):
            victim = self._db.execute(
                "SELECT id, data_bytes FROM entries WHERE retention = 'sample' "
                "AND data IS NOT NULL ORDER BY id LIMIT 1"
            ).fetchone()
            if victim is None:
                return False
            self._db.execute("DELETE FROM entries WHERE id = ?", (victim[0],))
            self._file_bytes -= int(victim[1])
            self._counts.evicted += 1
        return True

    def take_sequence(self, name: str) -> int:
        """The next value of counter ``name`` (durably taken: never handed out twice)."""
        with self._transaction(f"take a number of {name!r}"):
            value = self._counts.names.get(name, 0) + 1
            self._counts.names[name] = value
            self._save_counts()
        return value

    # ------------------------------------------------------------------ counters

    def _load_counts(self) -> _Counts:
        rows = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return _Counts(
            disk_full=bool(rows.pop("_disk_full", 0)),
            evicted=int(rows.pop("_evicted", 0)),
            dropped=int(rows.pop("_dropped", 0)),
            refused=int(rows.pop("_refused", 0)),
            names={str(k): int(v) for k, v in rows.items()},
        )

    def _save_counts(self) -> None:
        values = {
            "_disk_full": int(self._counts.disk_full),
            "_evicted": self._counts.evicted,
            "_dropped": self._counts.dropped,
            "_refused": self._counts.refused,
            **self._counts.names,
        }
        self._db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    # ------------------------------------------------------------------ delivering

    def pending(self, sink: str, limit: int = 32, *, now: float | None = None) -> list[Pending]:
        """Up to ``limit`` entries waiting for ``sink`` and due (``next_s`` passed): live
        entries first, then the backlog, each oldest first."""
        moment = self._clock() if now is None else now
        select = (
            "SELECT e.id, e.key, e.kind, e.payload, e.filename, e.data, d.attempts, e.created_s "
            "FROM deliveries d JOIN entries e ON e.id = d.entry_id "
            "WHERE d.sink = ? AND d.state = 'pending' AND d.next_s <= ? AND d.entry_id >= ? "
            "AND d.entry_id < ? ORDER BY d.entry_id LIMIT ?"
        )
        with self._lock:
            first_live = self._db.execute(
                "SELECT coalesce(min(id), 1 << 62) FROM entries WHERE created_s >= ?",
                (moment - self.live_window_s,),
            ).fetchone()[0]
            rows = self._db.execute(select, (sink, moment, first_live, 1 << 62, limit)).fetchall()
            if len(rows) < limit:
                rows += self._db.execute(
                    select, (sink, moment, 0, first_live, limit - len(rows))
                ).fetchall()
        return [_pending(r) for r in rows]

    def mark_delivered(self, sink: str, entry_ids: Iterable[int]) -> None:
        """Mark entries delivered to ``sink``; drop the frame files every sink has received
        (this clears ``disk_full``)."""
        self._finish(sink, list(entry_ids), DeliveryState.DELIVERED, "")

    def mark_rejected(self, sink: str, entry_id: int, error: str) -> None:
        """Mark an entry refused for good by ``sink`` (kept on file, with its frame file and the
        reason, for someone to look at)."""
        self._finish(sink, [entry_id], DeliveryState.REJECTED, error)

    def _finish(self, sink: str, ids: list[int], state: DeliveryState, error: str) -> None:
        if not ids:
            return
        moment = self._clock()
        freed = 0
        with self._transaction(f"mark deliveries to {sink}", durable=False):
            self._db.executemany(
                "UPDATE deliveries SET state = ?, done_s = ?, error = ? "
                "WHERE entry_id = ? AND sink = ? AND state = 'pending'",
                [(state.value, moment, error[:2000], i, sink) for i in ids],
            )
            for i in ids:
                row = self._db.execute(
                    "SELECT data_bytes FROM entries WHERE id = ? AND data IS NOT NULL AND "
                    "NOT EXISTS (SELECT 1 FROM deliveries WHERE entry_id = ? "
                    "AND state != 'delivered')",
                    (i, i),
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE entries SET data = NULL, data_bytes = 0 WHERE id = ?", (i,)
                    )
                    freed += int(row[0])
            if freed and self._counts.disk_full:
                self._counts.disk_full = False
                self._save_counts()
        self._file_bytes -= freed

    def retry_later(self, sink: str, entry_id: int, delay_s: float, error: str) -> None:
        """Count a failed delivery of an entry to ``sink`` and hold it back ``delay_s`` seconds."""
        if not math.isfinite(delay_s) or delay_s < 0:
            raise OutboxError(f"retry delay must be a finite number of seconds >= 0: {delay_s}")
        with self._transaction("hold back an entry", durable=False):
            self._db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_s = ?, error = ? "
                "WHERE entry_id = ? AND sink = ? AND state = 'pending'",
                (self._clock() + delay_s, error[:2000], entry_id, sink),
            )

    def purge(self, older_than_s: float) -> int:
        """Delete entries every sink has received (rejected ones stay) that were recorded more
        than ``older_than_s`` seconds ago; the number deleted."""
        cutoff = self._clock() - older_than_s
        with self._transaction("purge", durable=False):
            cursor = self._db.execute(
                "DELETE FROM entries WHERE created_s < ? AND NOT EXISTS (SELECT 1 FROM "
                "deliveries WHERE entry_id = entries.id AND state != 'delivered')",
                (cutoff,),
            )
        return int(cursor.rowcount)

    # ------------------------------------------------------------------ reading

    def depth(self) -> Depth:
        """Pending and refused entries per sink, bytes held and the disk policy's counters."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sink, state, count(*) FROM deliveries WHERE state != 'delivered' "
                "GROUP BY sink, state"
            ).fetchall()
            entries = int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])
            counts = self._counts
        pending = {str(s): int(n) for s, state, n in rows if state == DeliveryState.PENDING}
        rejected = {str(s): int(n) for s, state, n in rows if state == DeliveryState.REJECTED}
        return Depth(
            pending=pending,
            rejected=rejected,
            entries=entries,
            file_bytes=self._file_bytes,
            max_bytes=self.max_bytes,
            disk_full=counts.disk_full,
            evicted_samples=counts.evicted,
            dropped_samples=counts.dropped,
            refused_frames=counts.refused,
        )

    def entry(self, key: str) -> Pending | None:
        """The entry with content key ``key`` (with its file if still held), or ``None``."""
        with self._lock:
            r = self._db.execute(
                "SELECT id, key, kind, payload, filename, data, 0, created_s FROM entries "
                "WHERE key = ?",
                (key,),
            ).fetchone()
        return None if r is None else _pending(r)

    def keys(self) -> set[str]:
        """The content keys of every entry on file."""
        with self._lock:
            return {str(r[0]) for r in self._db.execute("SELECT key FROM entries")}

    def delivery_state(self, key: str, sink: str) -> DeliveryState | None:
        """Where the entry ``key`` stands with ``sink`` (``None``: no such entry or sink)."""
        with self._lock:
            row = self._db.execute(
                "SELECT d.state FROM deliveries d JOIN entries e ON e.id = d.entry_id "
                "WHERE e.key = ? AND d.sink = ?",
                (key, sink),
            ).fetchone()
        return None if row is None else DeliveryState(row[0])


def _pending(r: Sequence[Any]) -> Pending:
    return Pending(
        id=int(r[0]),
        key=str(r[1]),
        kind=Kind(r[2]),
        payload=json.loads(r[3]),
        filename=r[4],
        data=None if r[5] is None else bytes(r[5]),
        attempts=int(r[6]),
        created_s=float(r[7]),
    )


def _check(rec: Record) -> None:
    what = f"record {rec.key[:16]!r}"
    if not rec.key or len(rec.key) > 200:
        raise OutboxError(f"{what}: key must have 1 to 200 characters")
    if not rec.sinks:
        raise OutboxError(f"{what}: names no sink")
    if rec.data is not None and not rec.filename:
        raise OutboxError(f"{what}: a frame file needs a filename")
    if rec.data is None and rec.retention is Retention.SAMPLE:
        raise OutboxError(f"{what}: only frame files are OK samples")
