"""The durable on-disk outbox: presence events wait here, in SQLite, until the server acknowledges them."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, cast

from beacon_agent.models import EventKind, PresenceEvent

log = logging.getLogger(__name__)

COUNTERS: Final = ("stored", "acked", "dropped_full", "set_aside")
_FIELDS: Final = "id, kind, eid, observed_at, rssi, distance_m, dwell_s"

# `seq` orders the queue. A plain INTEGER PRIMARY KEY (no AUTOINCREMENT) is enough: new rows get max+1, so
# they always sort after every row still queued, and no sqlite_sequence row is rewritten on each insert.
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    eid TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    rssi REAL,
    distance_m REAL,
    dwell_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    eid TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    rssi REAL,
    distance_m REAL,
    dwell_s REAL NOT NULL,
    reason TEXT NOT NULL,
    set_aside_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES {", ".join(f"('{name}', 0)" for name in COUNTERS)};
"""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters kept in the database, so they survive restarts, plus the current depth."""

    depth: int
    stored: int
    acked: int
    dropped_full: int
    set_aside: int


@dataclass(frozen=True, slots=True)
class SetAside:
    """An event the server refused for good, kept for inspection and never resent."""

    event: PresenceEvent
    reason: str
    set_aside_at: datetime


def _row_to_event(row: sqlite3.Row) -> PresenceEvent:
    return PresenceEvent(
        id=row["id"],
        kind=cast(EventKind, row["kind"]),
        eid=row["eid"],
        observed_at=datetime.fromisoformat(row["observed_at"]),
        rssi=row["rssi"],
        distance_m=row["distance_m"],
        dwell_s=row["dwell_s"],
    )


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does; its -wal and -shm files copy these permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also tightens a file left by an older version or another umask
    finally:
        os.close(fd)


class Outbox:
    """A bounded FIFO of presence events in one SQLite file; safe to share between threads."""

    def __init__(
        self, path: Path, max_events: int = 100_000, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.path = path
        self.max_events = max_events
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        _create_private(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one put() is exactly one transaction.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: in WAL mode NORMAL skips the fsync at commit, so a power cut (the usual way a
        # Pi in a shop window stops) can undo the last commits and lose events the tracker handed over.
        # FULL fsyncs the WAL once per commit; callers commit once per batch, so the extra SD-card writes
        # are a few per minute. kill -9 is safe either way: committed WAL frames are in the OS page cache.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
        if by:
            db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (by, name))

    def _trim(self, db: sqlite3.Connection, table: str) -> int:
        excess = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) - self.max_events
        if excess <= 0:
            return 0
        db.execute(
            f"DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} ORDER BY seq LIMIT ?)", (excess,)
        )
        return excess

    def put(self, events: Sequence[PresenceEvent]) -> None:
        """Store a batch in one transaction; ids already queued or set aside are skipped."""
        if not events:
            return
        rows = [
            (e.id, e.kind, e.eid, e.observed_at.isoformat(), e.rssi, e.distance_m, e.dwell_s) for e in events
        ]
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                f"INSERT INTO events ({_FIELDS}) SELECT ?, ?, ?, ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM set_aside WHERE id = ?1) "
                "ON CONFLICT (id) DO NOTHING",
                rows,
            )
            self._bump(db, "stored", db.total_changes - before)
            dropped = self._trim(db, "events")
            self._bump(db, "dropped_full", dropped)
        if dropped:
            log.warning("outbox full (%d events): dropped the %d oldest", self.max_events, dropped)

    def peek(self, limit: int) -> list[PresenceEvent]:
        """The oldest `limit` queued events, oldest first; they stay queued until ack() or set_aside()."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_FIELDS} FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [_row_to_event(row) for row in rows]

    def ack(self, ids: Iterable[str]) -> None:
        """Remove events the server has acknowledged (stored now or earlier)."""
        keys = [(key,) for key in ids]
        if not keys:
            return
        with self._transaction() as db:
            before = db.total_changes
            db.executemany("DELETE FROM events WHERE id = ?", keys)
            self._bump(db, "acked", db.total_changes - before)

    def set_aside(self, rejected: Mapping[str, str]) -> None:
        """Move permanently refused events (id -> reason) out of the queue into the set-aside table."""
        if not rejected:
            return
        now = self._clock().isoformat()
        with self._transaction() as db:
            moved = 0
            for key, reason in rejected.items():
                cursor = db.execute(
                    f"INSERT OR REPLACE INTO set_aside ({_FIELDS}, reason, set_aside_at) "
                    f"SELECT {_FIELDS}, ?, ? FROM events WHERE id = ?",
                    (reason, now, key),
                )
                if cursor.rowcount:
                    db.execute("DELETE FROM events WHERE id = ?", (key,))
                    moved += 1
            self._bump(db, "set_aside", moved)
            # Kept for inspection, but a misconfigured gateway must not fill its SD card with them either.
            pruned = self._trim(db, "set_aside")
        if moved:
            log.warning("set aside %d events the server refused for good", moved)
        if pruned:
            log.warning("set-aside table full: pruned the %d oldest entries", pruned)

    def set_aside_events(self, limit: int = 100) -> list[SetAside]:
        """The most recently set-aside events with their reasons, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FIELDS}, reason, set_aside_at FROM set_aside ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            SetAside(_row_to_event(row), row["reason"], datetime.fromisoformat(row["set_aside_at"]))
            for row in rows
        ]

    def depth(self) -> int:
        """How many events wait to be sent."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def stats(self) -> OutboxStats:
        """The persisted counters and the current depth."""
        with self._lock:
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            depth = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
        return OutboxStats(depth=depth, **{name: counters[name] for name in COUNTERS})

    def close(self) -> None:
        """Close the database; committed events are already on disk."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
