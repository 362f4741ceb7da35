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
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Sync endpoints and their session dependency run on AnyIO's thread pool (40 threads). With fewer pooled
# connections than threads, an overloaded worker deadlocks: every thread waits for a connection, and the
# sessions holding connections cannot finish, because their commit needs a thread too. So the pool is sized
# above the thread limit, plus room for the delivery sender and the scheduler's jobs. And it keeps that many
# open: connections above `pool_size` are closed when given back, and under load a worker opened and closed
# one per request (a new PostgreSQL backend each time; on SQLite the WAL pragma waits for the writer).
POOL_SIZE: Final = 45
POOL_OVERFLOW: Final = 15


def make_engine(database_url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, PostgreSQL the psycopg 3 driver."""
    url = make_url(database_url)
    if url.drivername == "postgresql" or url.drivername == "postgres":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        in_memory = url.database in (None, "", ":memory:")
        if url.database and not in_memory:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection (SingletonThreadPool); a file gets a sized pool.
        pool = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


_sqlite_writers: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
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
            lock = _sqlite_writers[engine] = threading.Lock()
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
