"""Token buckets: `capacity` takes at once per key, refilled evenly over `period_s`; the same rule in three
stores.

- `MemoryBuckets`: this process's memory (the default on SQLite, one process). Several workers each keep
  their own, so a caller may get up to workers x capacity through.
- `DatabaseBuckets`: one row per (limit, key), taken with one atomic upsert (`INSERT ... ON CONFLICT DO
  UPDATE ... RETURNING`): on PostgreSQL one round trip on a small pool of autocommit connections of its own
  (no pool ping, no BEGIN/COMMIT), so all workers and machines count together.
- `RedisBuckets`: one hash per (limit, key), taken by a Lua script (one round trip, atomic in Redis), expiring
  on its own once full again.

Keys are keyed hashes (HMAC with the secret key) of the client address or device id: a shared store holds no
address or subscriber id. A store that cannot answer lets the request through (logged): the limits stop
abuse, they are not what keeps the service correct.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.core.config import Settings
from server.core.db import write_lock

log = logging.getLogger("nahbar.limits")

# A refill computed in floating point may land a hair under a whole token: count that as a whole one.
EPSILON: Final = 1e-9
POOL_SIZE: Final = 2  # PostgreSQL connections of the database store per process, opened on demand
POOL_WAIT_S: Final = 5.0
STORE_TIMEOUT_S: Final = 2.0  # Redis: connect and answer within this, or the request goes through
_WARN_EVERY_S: Final = 60.0
# A take that waits longer than this on a row lock or the server gives up, and the request goes through. No
# wait for the WAL's flush at commit: a crash may forget the last moments' takes, which only a limit loses.
_STATEMENT_LIMITS: Final = "-c statement_timeout=2000 -c lock_timeout=2000 -c synchronous_commit=off"


class Buckets(Protocol):
    def take(self, name: str, key: str, capacity: int, period_s: float) -> float:
        """Take a token from `key`'s bucket of limit `name`: 0.0 if allowed, else the seconds until one."""
        ...

    def close(self) -> None: ...


def _wait(tokens: float, rate: float) -> float:
    return max((1 - tokens) / rate, 0.0)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # clock reading when `tokens` was computed


class TokenBucketLimiter:
    """One limit's buckets in this process's memory, bounded to `max_keys`; thread-safe."""

    def __init__(
        self, capacity: int, period_s: float, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        if capacity < 1 or period_s <= 0 or max_keys < 1:
            raise ValueError("capacity and max_keys must be at least 1, period_s positive")
        self.capacity = capacity
        self.period_s = period_s
        self.max_keys = max_keys
        self._rate = capacity / period_s  # tokens per second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if allowed, else the seconds until the next token."""
        now = self._clock()
        with self._lock:
            self._drop_full(now)
            bucket = self._buckets.pop(key, None)
            tokens = (
                self.capacity
                if bucket is None
                else min(self.capacity, bucket.tokens + max(0.0, now - bucket.at) * self._rate)
            )
            wait = 0.0
            if tokens >= 1 - EPSILON:
                tokens -= 1
            else:
                wait = _wait(tokens, self._rate)
            self._buckets[key] = _Bucket(tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_full(self, now: float) -> None:
        # A bucket idle for a whole period is full again: forgetting it changes nothing.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.at < self.period_s:
                return
            self._buckets.popitem(last=False)


class MemoryBuckets:
    """Each limit's buckets in this process's memory."""

    def __init__(self, clock: Callable[[], float], max_keys: int) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._limiters: dict[tuple[str, int, float], TokenBucketLimiter] = {}
        self._lock = threading.Lock()

    def take(self, name: str, key: str, capacity: int, period_s: float) -> float:
        with self._lock:
            limiter = self._limiters.get((name, capacity, period_s))
            if limiter is None:
                limiter = TokenBucketLimiter(capacity, period_s, self._clock, self._max_keys)
                self._limiters[name, capacity, period_s] = limiter
        return limiter.take(key)

    def close(self) -> None:
        return None


class _Keys:
    """Keyed hashes of callers, so that no shared store holds an address or a subscriber id."""

    def __init__(self, secret: str) -> None:
        self._secret = hashlib.sha256(b"nahbar rate limit keys\x00" + secret.encode()).digest()

    def __call__(self, name: str, key: str) -> str:
        digest = hmac.new(self._secret, f"{name}\x00{key}".encode(), hashlib.sha256).digest()
        return digest[:16].hex()


class _Warner:
    """Logs a broken store once a minute, not on every request."""

    def __init__(self, store: str) -> None:
        self._store = store
        self._last = -_WARN_EVERY_S

    def __call__(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last >= _WARN_EVERY_S:
            self._last = now
            log.warning(
                "rate limit store did not answer; requests go through unlimited meanwhile",
                extra={"store": self._store, "error": type(exc).__name__},
            )


def _upsert_sql(least: str, greatest: str, param: Callable[[str], str]) -> str:
    """The take as one statement: refill, take a token if there is one, answer (allowed, tokens)."""
    cap, now, rate, period = param("cap"), param("now"), param("rate"), param("period")
    refill = f"{least}({cap}, b.tokens + {greatest}(0.0, {now} - b.at) * {rate})"
    enough = f"{refill} >= 1 - {EPSILON}"
    return (
        "INSERT INTO rate_limit_buckets AS b (name, key, tokens, at, expires_at, allowed) "
        f"VALUES ({param('name')}, {param('key')}, {cap} - 1, {now}, {now} + {period}, true) "
        "ON CONFLICT (name, key) DO UPDATE SET "
        f"tokens = CASE WHEN {enough} THEN {refill} - 1 ELSE {refill} END, "
        f"allowed = {enough}, "
        f"at = {greatest}(b.at, {now}), "
        f"expires_at = {greatest}(b.at, {now}) + {period} "
        "RETURNING allowed, tokens"
    )


_POSTGRES_TAKE: Final = _upsert_sql("LEAST", "GREATEST", lambda name: f"%({name})s")
_SQLITE_TAKE: Final = text(_upsert_sql("min", "max", lambda name: f":{name}"))


class DatabaseBuckets:
    """Buckets in the `rate_limit_buckets` table, shared by every worker on the database."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        clock: Callable[[], float],
        secret: str,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self._clock = clock
        self._keys = _Keys(secret)
        self._warn = _Warner("database")
        self._engine = engine
        self._write_lock = write_lock(sessions)
        self._postgres = engine.dialect.name == "postgresql"
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False) if self._postgres else ""
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)

    def take(self, name: str, key: str, capacity: int, period_s: float) -> float:
        rate = capacity / period_s
        params: dict[str, Any] = {
            "name": name,
            "key": self._keys(name, key),
            "cap": float(capacity),
            "now": self._clock(),
            "rate": rate,
            "period": float(period_s),
        }
        try:
            allowed, tokens = self._postgres_take(params) if self._postgres else self._sqlite_take(params)
        except (SQLAlchemyError, OSError, psycopg.Error) as exc:
            self._warn(exc)
            return 0.0
        return 0.0 if allowed else _wait(tokens, rate)

    def _sqlite_take(self, params: dict[str, Any]) -> tuple[bool, float]:
        with self._write_lock, self._engine.begin() as connection:
            allowed, tokens = connection.execute(_SQLITE_TAKE, params).one()
        return bool(allowed), float(tokens)

    def _postgres_take(self, params: dict[str, Any]) -> tuple[bool, float]:
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise OSError("no rate limit connection came free")
        connection = None
        try:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                connection = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=5, options=_STATEMENT_LIMITS
                )
            row = connection.execute(_POSTGRES_TAKE, params).fetchone()
            self._idle.put(connection)
            connection = None
        finally:
            if connection is not None:  # it failed: never hand a broken connection to the next caller
                connection.close()
            self._slots.release()
        assert row is not None
        return bool(row[0]), float(row[1])

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


# KEYS[1]: the bucket; ARGV: capacity, rate (tokens a second), now (Unix seconds), time to full (ms).
# Numbers go back as strings: Redis turns a Lua number into an integer.
_REDIS_TAKE: Final = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = cap
local at = now
if bucket[1] then
  local last = tonumber(bucket[2])
  tokens = math.min(cap, tonumber(bucket[1]) + math.max(0, now - last) * rate)
  at = math.max(last, now)
end
local allowed = 0
if tokens >= 1 - tonumber(ARGV[5]) then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {allowed, string.format('%.17g', tokens)}
"""


class RedisBuckets:
    """Buckets in Redis (NAHBAR_REDIS_URL), shared by every worker and machine that uses it."""

    def __init__(self, url: str, prefix: str, clock: Callable[[], float], secret: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=STORE_TIMEOUT_S, socket_connect_timeout=STORE_TIMEOUT_S
        )
        self._script = self._client.register_script(_REDIS_TAKE)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._prefix = prefix
        self._clock = clock
        self._keys = _Keys(secret)
        self._warn = _Warner("redis")

    def take(self, name: str, key: str, capacity: int, period_s: float) -> float:
        rate = capacity / period_s
        bucket = f"{self._prefix}ratelimit:{name}:{self._keys(name, key)}"
        args: list[str | int] = [
            capacity,
            repr(rate),
            repr(self._clock()),
            max(1, int(period_s * 1000)),
            repr(EPSILON),
        ]
        try:
            allowed, tokens = self._script(keys=[bucket], args=args)
        except self._errors as exc:
            self._warn(exc)
            return 0.0
        return 0.0 if int(allowed) else _wait(float(tokens), rate)

    def close(self) -> None:
        self._client.close()


def buckets_for(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: Callable[[], float]
) -> Buckets:
    """The store the settings ask for (`auto`: Redis if configured, else the database on PostgreSQL, else
    this process's memory)."""
    store = settings.rate_limit_store
    secret = settings.secret_key.get_secret_value()
    if store == "auto":
        store = "redis" if settings.redis_url else "memory" if settings.is_sqlite else "database"
    if store == "redis":
        assert settings.redis_url is not None  # the settings refuse redis without a URL
        return RedisBuckets(settings.redis_url.get_secret_value(), settings.redis_prefix, clock, secret)
    if store == "database":
        return DatabaseBuckets(engine, sessions, clock, secret)
    return MemoryBuckets(clock, settings.rate_limit_max_keys)
