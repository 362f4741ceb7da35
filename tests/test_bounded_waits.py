"""Every wait on the sighting path is bounded: a request that cannot get a row lock, a recording thread or a
slot in time answers 503 with Retry-After and stores nothing, instead of queueing for ever; on both
databases, with the blocking done by a real second transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from server.app import create_app
from server.core.config import Settings
from server.core.const import EventKind
from server.core.db import make_sessionmaker
from server.core.errors import ServiceUnavailable
from server.policy.live import SiteRef
from server.presence.batcher import SightingBatcher
from server.presence.models import ProximityEvent
from server.presence.record import IngestConfig, Pending, Sighting
from server.sites.models import Site
from tests.conftest import TEST_SECRET, Clock
from tests.world import enrol, event, make_charity, opt_in

pytestmark = pytest.mark.slow


@contextmanager
def person_locked(engine: Engine, subscriber_id: object) -> Iterator[None]:
    """Another transaction holds what recording this person's sighting needs: the person's row (PostgreSQL)
    or the database's one write lock (SQLite)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(
                text("SELECT 1 FROM subscribers WHERE id = :id FOR UPDATE"), {"id": subscriber_id}
            )
        try:
            yield
        finally:
            connection.rollback()


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(ProximityEvent)) or 0


def test_a_sighting_blocked_by_another_transaction_answers_503_then_is_stored_on_resend(
    client: TestClient, session, engine: Engine, clock: Clock
):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    person = client.app.state.runtime.eid_index.resolve(bytes.fromhex(phone.eid_at(clock())))
    batch = {"events": [event("evt-lock-0001", phone, clock())]}

    with person_locked(engine, person):
        answer = client.post("/gateway/v1/events", json=batch, headers=gateway)

    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "database_unavailable"
    assert answer.headers["retry-after"].isdigit()
    assert stored(engine) == 0
    resent = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert resent.status_code == 200, resent.text
    assert resent.json()["accepted"] == ["evt-lock-0001"]
    assert stored(engine) == 1


def test_a_sighting_nobody_takes_in_time_leaves_the_queue_with_503(engine: Engine, session, clock: Clock):
    charity = make_charity(session, clock())
    site = SiteRef.of(session.get_one(Site, charity.site_id))
    with TestClient(create_app(_settings(engine), clock=clock)) as client:
        phone = opt_in(client)
        person = client.app.state.runtime.eid_index.resolve(bytes.fromhex(phone.eid_at(clock())))
    batcher = SightingBatcher(make_sessionmaker(engine), writers=1, queue_wait_s=0.3, record_wait_s=30)
    config = IngestConfig(timedelta(seconds=120), 600)

    def pending(key: str) -> Pending:
        sighting = Sighting(key, "phone", None, EventKind.ENTER, clock())
        return Pending(person, site, sighting, clock())

    first: list[object] = []
    with person_locked(engine, person):
        leader = threading.Thread(target=lambda: first.append(_record(batcher, pending("k-first-1"), config)))
        leader.start()
        time.sleep(0.2)  # the leader now waits for the lock, holding the one writer slot
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as refused:
            batcher.record([pending("k-second-1")], config)
        waited = time.monotonic() - started
    leader.join(30)

    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"].isdigit()
    assert waited < 5, "bounded by queue_wait_s, not by the leader's transaction"
    assert len(first) == 1
    assert not isinstance(first[0], Exception), first
    assert stored(engine) == 1, "the refused sighting left the queue unrecorded; the leader's was stored"


def test_requests_beyond_the_workers_slots_are_refused_quickly_not_queued(
    settings: Settings, engine: Engine, session, clock: Clock
):
    one_slot = settings.model_copy(update={"max_concurrent_requests": 1, "request_queue_seconds": 0.5})
    with TestClient(create_app(one_slot, clock=clock)) as client:
        gateway = enrol(client, make_charity(session, clock()).enrolment_code)
        phone = opt_in(client)
        person = client.app.state.runtime.eid_index.resolve(bytes.fromhex(phone.eid_at(clock())))
        batch = {"events": [event("evt-slot-0001", phone, clock())]}
        answers: list[object] = []
        with person_locked(engine, person):
            holder = threading.Thread(
                target=lambda: answers.append(client.post("/gateway/v1/events", json=batch, headers=gateway))
            )
            holder.start()
            time.sleep(0.3)  # it holds the only slot, waiting for the lock
            started = time.monotonic()
            refused = client.get("/readyz")
            waited = time.monotonic() - started
            alive = client.get("/healthz")
        holder.join(30)

    assert refused.status_code == 503
    assert refused.json()["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert waited < 5
    assert alive.status_code == 200, "liveness answers from the event loop, without a slot"


def _record(batcher: SightingBatcher, item: Pending, config: IngestConfig) -> object:
    try:
        return batcher.record([item], config)
    except Exception as exc:  # noqa: BLE001 - handed to the test's assertion
        return exc


def _settings(engine: Engine) -> Settings:
    url = engine.url.render_as_string(hide_password=False)
    return Settings(environment="test", database_url=url, secret_key=TEST_SECRET, scheduler_enabled=False)


def test_readiness_that_fails_says_when_to_ask_again(client, session):
    """An unmigrated or unreachable database answers 503 with Retry-After, like every other 503 here."""
    session.execute(text("DROP TABLE alembic_version"))
    session.commit()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["code"] == "migrations_pending"
    assert answer.headers["retry-after"].isdigit()
