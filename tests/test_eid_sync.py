"""Opt-ins taken by one worker resolve in every other worker: at once by a notice (PostgreSQL), after the
sync job's next run, or when a gateway brings the new EID."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.core.config import Settings
from server.presence.models import ProximityEvent
from server.presence.opt_ins import OptInLook
from server.presence.tasks import sync_opt_ins
from server.runtime import Runtime
from tests.conftest import TEST_SECRET, Clock
from tests.world import Phone, enrol, event, make_charity, opt_in


def _deaf(runtime: Runtime) -> None:
    """This worker hears no notices (as while its listener reconnects): only the look can tell it."""
    if runtime.opt_in_notices is not None:
        runtime.opt_in_notices.stop()


def test_an_opt_in_on_one_worker_resolves_on_another_after_the_sync(
    settings: Settings, session, clock: Clock
):
    make_charity(session, clock())
    # Two workers: separate apps, separate runtimes and EID tables, one database. No background jobs, so
    # the test decides when the sync runs.
    quiet = settings.model_copy(update={"scheduler_enabled": False})
    with (
        TestClient(create_app(quiet, clock=clock)) as first,
        TestClient(create_app(quiet, clock=clock)) as second,
    ):
        other = second.app.state.runtime
        _deaf(other)
        phone = opt_in(first)
        broadcast = bytes.fromhex(phone.eid_at(clock()))
        subscriber = first.app.state.runtime.eid_index.resolve(broadcast)
        assert subscriber is not None
        assert other.eid_index.resolve(broadcast) is None, "the other worker has not heard of it yet"

        clock.advance(3)
        assert sync_opt_ins(other) == 1
        assert other.eid_index.resolve(broadcast) == subscriber
        assert sync_opt_ins(other) == 0, "a second run adds nobody twice"
        assert len(other.eid_index) == 1


def test_a_sighting_right_after_an_opt_in_on_another_worker_is_stored_not_dropped(
    settings: Settings, session, clock: Clock
):
    charity = make_charity(session, clock())
    quiet = settings.model_copy(update={"scheduler_enabled": False})
    with (
        TestClient(create_app(quiet, clock=clock)) as first,
        TestClient(create_app(quiet, clock=clock)) as second,
    ):
        gateway = enrol(second, charity.enrolment_code)
        _deaf(second.app.state.runtime)
        phone = opt_in(first)  # the second worker has not heard of it, and no sync job runs
        stranger = bytes(range(16))  # an EID nobody broadcasts stays dropped

        answer = second.post(
            "/gateway/v1/events",
            json={
                "events": [
                    event("event-0001", phone, clock()),
                    event("event-0002", Phone({}, stranger, 10), clock()),
                ]
            },
            headers=gateway,
        )

        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == ["event-0001", "event-0002"]
        session.expire_all()
        stored = session.scalars(select(ProximityEvent.idempotency_key)).all()
        assert stored == ["event-0001"], "the new subscriber's sighting is stored, the stranger's dropped"
        assert len(second.app.state.runtime.eid_index) == 1


def _until(condition, what: str, within_s: float = 15.0) -> None:
    """Wait for a state to be reached (not a speed: bench/opt_in_propagation.py measures that)."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.mark.postgres
def test_a_notice_tells_another_worker_of_an_opt_in_and_a_withdrawal_without_any_look(
    postgres_url: str, clock: Clock
):
    # No scheduler: neither the sync job nor the rotation runs; no gateway asks. Only the notice can tell.
    quiet = Settings(
        environment="test", database_url=postgres_url, secret_key=TEST_SECRET, scheduler_enabled=False
    )
    with (
        TestClient(create_app(quiet, clock=clock)) as first,
        TestClient(create_app(quiet, clock=clock)) as second,
    ):
        other = second.app.state.runtime
        assert other.opt_in_notices is not None
        assert other.opt_in_notices.listening.wait(15), "the listener connected and caught up"

        phone = opt_in(first)
        broadcast = bytes.fromhex(phone.eid_at(clock()))
        subscriber = first.app.state.runtime.eid_index.resolve(broadcast)
        assert subscriber is not None
        _until(lambda: other.eid_index.resolve(broadcast) == subscriber, "the other worker never heard")

        assert first.delete("/mobile/v1/me", headers=phone.headers).status_code == 204
        _until(lambda: other.eid_index.resolve(broadcast) is None, "the withdrawal never reached it")
        assert len(other.eid_index) == 0


def test_the_periodic_sync_waits_out_a_slow_look_quietly(settings: Settings, session, clock: Clock, caplog):
    """While another look is still running (a worker's slow start on a busy machine), the job's own look
    cannot begin within its wait: that is no failure, the running look reads the same rows, and the next run
    looks again. It used to raise, so every worker logged a traceback each run until the machine caught up."""
    make_charity(session, clock())
    quiet = settings.model_copy(update={"scheduler_enabled": False})
    with TestClient(create_app(quiet, clock=clock)) as client:
        runtime: Runtime = client.app.state.runtime
        reading, release = threading.Event(), threading.Event()

        def slow_database(since):  # the database edge: a read that takes its time
            reading.set()
            release.wait(10)
            return []

        runtime.opt_ins = OptInLook(runtime.eid_index, slow_database, clock, wait_s=0.2)
        first = threading.Thread(target=runtime.opt_ins.now)
        first.start()
        assert reading.wait(5)
        caplog.clear()  # the start's own warnings (push services not configured)
        with caplog.at_level(logging.DEBUG, logger="nahbar"):
            assert sync_opt_ins(runtime) == 0
        release.set()
        first.join(5)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert sync_opt_ins(runtime) == 0, "once the slow look is done, the next run looks again"
