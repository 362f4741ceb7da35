"""Rate limits and login lockouts hold at their stated values across workers, not once per worker: counted in
the database (PostgreSQL by default, SQLite when chosen) or in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from server.app import create_app
from server.core.config import Settings
from server.core.db import make_sessionmaker
from server.limits.buckets import DatabaseBuckets, RedisBuckets
from server.limits.models import RateLimitBucket
from server.limits.tasks import delete_full
from tests.conftest import Clock
from tests.served import Served
from tests.test_admin_accounts import login
from tests.test_sightings import sighting, with_region
from tests.world import make_charity, opt_in

OPT_IN = {"consent_text_version": "2026-11", "scopes": ["volunteer"]}


@contextmanager
def _workers(settings: Settings, clock: Clock, count: int = 2) -> Iterator[list[TestClient]]:
    """`count` workers: apps with runtimes of their own (memory, EID tables) on one database."""
    with ExitStack() as stack:
        yield [stack.enter_context(TestClient(create_app(settings, clock=clock))) for _ in range(count)]


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def shared(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The settings with the limits counted in the database, or in Redis under a prefix of this test's."""
    if request.param == "database":
        yield settings.model_copy(update={"rate_limit_store": "database", "scheduler_enabled": False})
        return
    import redis

    url = request.getfixturevalue("redis_url")
    prefix = f"nahbar-test-{uuid.uuid4().hex[:10]}:"
    yield Settings(
        **(
            settings.model_dump()
            | {
                "secret_key": settings.secret_key,
                "rate_limit_store": "redis",
                "redis_url": url,
                "redis_prefix": prefix,
                "scheduler_enabled": False,
            }
        )
    )
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _refused(limit: str) -> float:
    """How many requests this process refused by `limit` so far (its metric)."""
    return REGISTRY.get_sample_value("nahbar_rate_limited_total", {"limit": limit}) or 0.0


def test_opt_ins_from_one_address_are_counted_once_for_all_workers(shared: Settings, clock: Clock):
    refused = _refused("optin")
    with _workers(shared, clock) as (first, second):
        answers = [(first, second)[n % 2].post("/mobile/v1/optin", json=OPT_IN) for n in range(12)]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [201] * 10 + [429, 429], "10 an hour in all, not 10 per worker"
    assert answers[-1].headers["retry-after"] == "360"
    assert _refused("optin") - refused == 2


def test_sightings_of_one_device_are_counted_once_for_all_workers(shared: Settings, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    with _workers(shared, clock) as workers:
        phone = opt_in(workers[0])
        answers = [
            workers[n % 2].post(
                "/mobile/v1/sightings", json=sighting(f"ios-{n:04d}", clock()), headers=phone.headers
            )
            for n in range(32)
        ]
        assert [a.status_code for a in answers] == [200] * 30 + [429, 429], "30 a minute in all"
        clock.advance(2)  # a token every 2 s, for the device, wherever it asks
        again = workers[1].post(
            "/mobile/v1/sightings", json=sighting("ios-late", clock()), headers=phone.headers
        )
        assert again.status_code == 200, again.text


def test_the_store_keeps_no_address_or_device_id(settings: Settings, engine, session, clock: Clock):
    stored = settings.model_copy(update={"rate_limit_store": "database", "scheduler_enabled": False})
    with _workers(stored, clock, count=1) as (worker,):
        phone = opt_in(worker)
        with_region(session, make_charity(session, clock()))
        worker.post("/mobile/v1/sightings", json=sighting("ios-0001", clock()), headers=phone.headers)
        subscriber = worker.app.state.runtime.eid_index.resolve(bytes.fromhex(phone.eid_at(clock())))
        runtime = worker.app.state.runtime
        session.expire_all()
        rows = session.execute(select(RateLimitBucket.name, RateLimitBucket.key)).all()
        assert {name for name, _ in rows} == {"optin", "sightings"}
        assert not [key for _, key in rows if key in {"testclient", str(subscriber)}]

        clock.advance(3600)  # every bucket full again: nothing worth keeping
        assert delete_full(runtime) == 2
        session.expire_all()
        assert session.scalars(select(RateLimitBucket)).all() == []


@pytest.mark.redis
def test_a_store_that_does_not_answer_lets_requests_through(settings: Settings, engine, clock: Clock):
    """Redis down (nothing listens on the port), or the database's table missing: the limit is not what
    keeps the service up, so requests go through, and the next answer counts again."""
    ticks = lambda: clock().timestamp()  # noqa: E731
    secret = settings.secret_key.get_secret_value()
    redis_down = RedisBuckets("redis://127.0.0.1:1/0", "x:", ticks, secret)
    assert [redis_down.take("optin", "a", 1, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    redis_down.close()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE rate_limit_buckets")
    database_broken = DatabaseBuckets(engine, make_sessionmaker(engine), ticks, secret)
    assert [database_broken.take("optin", "a", 1, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    database_broken.close()


def test_concurrent_failed_logins_on_two_workers_lock_out_at_the_stated_number(
    settings: Settings, clock: Clock
):
    """Each login checks the count, then verifies the password (tens of milliseconds), then records: without
    a lock per e-mail and client, every request in flight passed the check at once."""
    quiet = settings.model_copy(update={"scheduler_enabled": False})
    with _workers(quiet, clock) as workers:

        def attempt(n: int) -> int:
            return login(workers[n % 2], "nobody@alpha.example", "wrong password").status_code

        refused = _refused("login")
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(attempt, range(24)))

    assert statuses.count(401) == settings.max_failures_per_account, statuses
    assert statuses.count(429) == 24 - settings.max_failures_per_account
    assert _refused("login") - refused == statuses.count(429)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_served_processes_on_postgresql_hold_the_opt_in_limit_together(tmp_path, postgres_url):
    limit = {"NAHBAR_OPTIN_PER_HOUR_PER_CLIENT": "4"}
    with Served(tmp_path, postgres_url, **limit) as first, Served(tmp_path, postgres_url, **limit) as second:
        urls = [first.url, second.url]
        statuses = [
            httpx.post(f"{urls[n % 2]}/mobile/v1/optin", json=OPT_IN, timeout=10).status_code
            for n in range(6)
        ]
    assert statuses == [201] * 4 + [429, 429], "4 an hour for both processes, not 4 each"
