"""Engine, metadata and session handling shared by every domain."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from server.core.errors import ServiceUnavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The ids of the tables that grow with every sighting (visits, events, decisions, deliveries, responses) and
# the columns that point at them: 64 bits on PostgreSQL, where a 32-bit sequence would run out after 2.1
# billion rows, in five days at the plan's peak of 5,000 events a second. SQLite's INTEGER PRIMARY KEY is a
# 64-bit rowid already (a BIGINT column would not be one, and would not number itself).
GrowingId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run during a write; busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Connections a process keeps for its requests and its background work. Requests are admitted a bounded
# number at a time (server/api/admission.py), each holding at most one connection, so the pool is that number
# plus room for the delivery sender, the scheduler's jobs and the EID index's loads. Connections above
# `pool_size` are closed when given back (a new PostgreSQL backend each time), so the pool keeps them open.
POOL_RESERVE: Final = 8
POOL_OVERFLOW: Final = 4
DEFAULT_POOL_SIZE: Final = 32
# How long a thread waits for a pooled connection before its request fails with 503 (never for ever).
POOL_TIMEOUT_S: Final = 10.0
# PostgreSQL, for the server's connections: a statement waits at most this long for a row lock (then the
# request fails with 503 and is retried), and a transaction left idle this long is ended by the server, so
# no lock can be held for ever by a request that stopped moving.
LOCK_TIMEOUT_MS: Final = 5_000
IDLE_IN_TRANSACTION_TIMEOUT_MS: Final = 60_000
# SQLite: how long a writer waits for the database's one write lock (the busy handler), and for the
# process's own writer lock before it.
SQLITE_BUSY_TIMEOUT_S: Final = 10.0


def make_engine(database_url: str, *, pool_size: int = DEFAULT_POOL_SIZE, serving: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, PostgreSQL the psycopg 3 driver.

    `serving`: the server's own engine, whose PostgreSQL sessions get bounded lock waits (a migration or a
    command run by hand may wait as long as it must)."""
    url = make_url(database_url)
    if url.drivername == "postgresql" or url.drivername == "postgres":
        url = url.set(drivername="postgresql+psycopg")
    sized = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, "pool_timeout": POOL_TIMEOUT_S}
    if url.get_backend_name() == "sqlite":
        in_memory = url.database in (None, "", ":memory:")
        if url.database and not in_memory:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection (SingletonThreadPool); a file gets a sized pool.
        pool = {} if in_memory else sized
        connect = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create_engine(url, connect_args=connect, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {}
    if serving:
        connect_args["options"] = (
            f"-c lock_timeout={LOCK_TIMEOUT_MS} "
            f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        )
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **sized)


class WriterBusy(ServiceUnavailable):
    code = "database_busy"


class _WriterLock:
    """The process's SQLite writer lock; a thread waits for it as long as SQLite's own busy handler would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise WriterBusy(
                "The database is busy with other writes; retry in a few seconds.",
                headers={"Retry-After": "2"},
            )

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


_sqlite_writers: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()
_sqlite_writers_lock = threading.Lock()


def write_lock(sessions: sessionmaker[Session]) -> AbstractContextManager[Any]:
    """Held around the busiest write transactions of a process (recording sightings, the outbox's turns).

    SQLite has one writer at a time, and a writer that finds the database locked sleeps in SQLite's busy
    handler (1, 2, 5, 10, ... 100 ms) whether or not the lock came free meanwhile: at 100 prompts a second
    the batcher and the outbox lost most of their time that way. Queued on a lock of the process instead,
    the next one starts the moment the other commits. PostgreSQL locks rows, not the database: nothing."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return nullcontext()
    with _sqlite_writers_lock:
        lock = _sqlite_writers.get(engine)
        if lock is None:
            lock = _sqlite_writers[engine] = _WriterLock()
    return lock


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit when the unit of work succeeds, roll back when it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def utcnow() -> datetime:
    return datetime.now(UTC)
