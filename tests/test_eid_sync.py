"""Opt-ins taken by one worker resolve in every other worker after the sync job's next run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.app import create_app
from server.core.config import Settings
from server.presence.tasks import sync_opt_ins
from tests.conftest import Clock
from tests.world import make_charity, opt_in


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
        phone = opt_in(first)
        broadcast = bytes.fromhex(phone.eid_at(clock()))
        subscriber = first.app.state.runtime.eid_index.resolve(broadcast)
        assert subscriber is not None
        other = second.app.state.runtime
        assert other.eid_index.resolve(broadcast) is None, "the other worker has not heard of it yet"

        clock.advance(3)
        assert sync_opt_ins(other) == 1
        assert other.eid_index.resolve(broadcast) == subscriber
        assert sync_opt_ins(other) == 0, "a second run adds nobody twice"
        assert len(other.eid_index) == 1
