"""Which process is the scheduler's leader: the one that holds a lock the whole database deployment shares.

Every process runs the scheduler; jobs that must happen once per deployment (the retention purge, the
delivery sweep, clean-ups) run only where `held()` is true. On PostgreSQL the lock is a session-level
advisory lock on a connection of its own (not from the pool: a pooled connection would carry the lock to
whatever borrows it next); on SQLite, which lives on one machine, it is an exclusive `flock` on a file beside
the database. Either is released by the operating system or the database server when its holder dies, and
another process takes it at its next try (every `CLAIM_EVERY_S`, and at every leader-only job's tick).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("nahbar.scheduler")

# pg_try_advisory_lock's key: b"nahbarS1" read as a signed 64-bit number. Advisory locks are per database,
# so deployments sharing a PostgreSQL server on different databases do not compete.
ADVISORY_KEY: Final = int.from_bytes(b"nahbarS1", "big", signed=True)
# How often every process tries to become leader (and the leader checks that its connection still holds).
CLAIM_EVERY_S: Final = 5.0
# The leader's connection: a vanished peer is noticed after at most idle + interval x count = 11 s by both
# sides (the server then ends the session, releasing the lock), and an unanswered write after 10 s.
_KEEPALIVES: Final[dict[str, Any]] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 5,
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3",
}


class Leadership(Protocol):
    def held(self) -> bool:
        """Whether this process leads now; tries to become leader when it does not."""
        ...

    def close(self) -> None:
        """Give the leadership up (at shutdown)."""
        ...


class SoleProcess:
    """An in-memory database belongs to one process: it always leads."""

    def held(self) -> bool:
        return True

    def close(self) -> None:
        return None


class FileLeadership:
    """An exclusive flock on `path`; the kernel releases it when the process ends, however it ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def held(self) -> bool:
        with self._lock:
            if self._fd is not None:
                return True  # nobody can take a flock from its holder
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
        log.info("this process is now the scheduler leader", extra={"lock": "file"})
        return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # closing the last descriptor releases the flock
                self._fd = None


class AdvisoryLeadership:
    """A session-level PostgreSQL advisory lock held on a dedicated connection."""

    def __init__(self, conninfo: str, key: int = ADVISORY_KEY) -> None:
        self._conninfo = conninfo
        self._key = key
        self._connection: psycopg.Connection[Any] | None = None
        self._leader = False
        self._lock = threading.Lock()  # jobs' threads ask at once; one connection answers one at a time

    def held(self) -> bool:
        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(self._conninfo, autocommit=True, **_KEEPALIVES)
                if self._leader:
                    # The lock lives as long as the session: a query that answers proves both.
                    self._connection.execute("SELECT 1")
                    return True
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
                self._leader = bool(row and row[0])
            except psycopg.Error as exc:
                if self._leader:
                    log.warning(
                        "scheduler leadership lost: its database connection broke",
                        extra={"error": type(exc).__name__},
                    )
                self._leader = False
                self._drop()
                return False
            if self._leader:
                log.info("this process is now the scheduler leader", extra={"lock": "advisory"})
            return self._leader

    def close(self) -> None:
        with self._lock:
            self._leader = False
            self._drop()  # the session ends: PostgreSQL releases its advisory locks

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
            self._connection = None


def lock_file_of(database: str) -> Path:
    """The leader's lock file beside an SQLite database file."""
    return Path(f"{database}.scheduler-lock")


def leadership_for(database_url: str) -> Leadership:
    """The leadership that fits the database: advisory lock, lock file, or none needed."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLeadership(url.set(drivername="postgresql").render_as_string(hide_password=False))
    if url.database in (None, "", ":memory:"):
        return SoleProcess()
    return FileLeadership(lock_file_of(url.database))
