"""Retention on SQLite and PostgreSQL: the scheduled job rolls raw sightings up into daily aggregates per site
and local day, then deletes those older than the retention period with the decisions of that time; the
aggregates stay, and so do the people's histories (tests/test_policy_history.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from server.cli import app as cli
from server.core.config import get_settings
from server.presence.models import DailyAggregate, ProximityEvent, Visit
from server.prompts.models import PromptDecision
from server.retention.repository import delete_visits_before
from server.retention.tasks import JOBS
from server.tenancy.models import PlatformSettings
from tests.conftest import Clock
from tests.test_sightings import sighting, with_region
from tests.world import enrol, event, make_charity, opt_in

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
OLD = datetime(2026, 11, 5, 23, 30, tzinfo=UTC)  # 00:30 on 6 November in Berlin, the site's zone
RECENT = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)


def retention_job():
    [job] = [job for job in JOBS if job.name == "retention"]
    return job


def aggregates(session: Session) -> dict[tuple[int, date], tuple[int, int, int, int]]:
    session.expire_all()
    return {
        (a.site_id, a.day): (a.events, a.visits, a.prompts, a.suppressed)
        for a in session.scalars(select(DailyAggregate))
    }


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def walk_past(client: TestClient, session: Session, clock: Clock):
    """Old sightings (a gateway's and the phone's own) and a recent one, each decided at its time."""
    charity = with_region(session, make_charity(session, NOW))
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    clock.now = OLD
    client.post("/gateway/v1/events", json={"events": [event("evt-old-0001", phone, OLD)]}, headers=gateway)
    client.post(
        "/mobile/v1/sightings", json=sighting("ios-old-0001", clock.advance(30)), headers=phone.headers
    )
    clock.now = RECENT
    client.post(
        "/gateway/v1/events", json={"events": [event("evt-new-0001", phone, RECENT)]}, headers=gateway
    )
    clock.now = NOW
    return charity, gateway, phone


def test_the_job_rolls_up_then_purges_what_is_older_than_14_days(quiet_client, session, clock: Clock):
    charity, _, _ = walk_past(quiet_client, session, clock)
    old_decision = session.scalars(select(PromptDecision).order_by(PromptDecision.id)).first()
    assert old_decision is not None
    assert old_decision.event_id is not None
    old_id = old_decision.id
    decided = {
        day: session.scalar(
            select(func.count()).select_from(PromptDecision).where(PromptDecision.decided_at.between(*span))
        )
        for day, span in {
            date(2026, 11, 6): (OLD, OLD + timedelta(hours=1)),
            date(2026, 11, 22): (RECENT, RECENT + timedelta(hours=1)),
        }.items()
    }
    assert decided == {date(2026, 11, 6): 1, date(2026, 11, 22): 1}  # one decision per visit
    assert (count(session, ProximityEvent), count(session, Visit)) == (3, 2)

    job = retention_job()
    assert (job.every_s, job.at_start) == (3600, True)
    report = job.run(quiet_client.app.state.runtime)

    assert (report.events_deleted, report.visits_deleted) == (2, 1)
    session.expire_all()
    assert session.scalars(select(ProximityEvent.idempotency_key)).all() == ["evt-new-0001"]
    assert count(session, Visit) == 1
    rolled = aggregates(session)
    # Local days in Berlin: 23:30 UTC on 5 November is the 6th there. Today (25th) is not over yet.
    assert set(rolled) == {(charity.site_id, date(2026, 11, 6)), (charity.site_id, date(2026, 11, 22))}
    events, visits, prompts, suppressed = rolled[(charity.site_id, date(2026, 11, 6))]
    assert (events, visits, prompts + suppressed) == (2, 1, 1)
    assert rolled[(charity.site_id, date(2026, 11, 22))][:2] == (1, 1)
    assert report.aggregated == 2
    # The old decision went too (what the caps need of it is in the person's history, its count in the
    # aggregate above); the recent one stays.
    assert report.decisions_deleted == 1
    session.expire_all()
    assert session.scalar(select(func.count()).where(PromptDecision.id == old_id)) == 0
    assert count(session, PromptDecision) == 1


def test_a_purged_visit_is_unlinked_from_the_events_and_decisions_kept(quiet_client, session, clock: Clock):
    """Events and visits are purged in separate batches, so a visit can go while some of its events stay (a
    batch of events cut short by its limit). The links have no foreign key: the purge itself cuts them."""
    walk_past(quiet_client, session, clock)
    old_visit = session.scalars(select(Visit).order_by(Visit.id)).first()
    assert old_visit is not None

    assert delete_visits_before(session, OLD + timedelta(days=1), limit=100) == 1
    session.commit()

    session.expire_all()
    assert session.get(Visit, old_visit.id) is None
    linked = select(func.count()).where(ProximityEvent.visit_id == old_visit.id)
    assert session.scalar(linked) == 0
    assert session.scalar(select(func.count()).where(PromptDecision.visit_id == old_visit.id)) == 0
    assert count(session, ProximityEvent) == 3  # the events themselves stay, unlinked
    assert session.scalar(select(func.count()).where(ProximityEvent.visit_id.is_(None))) == 2


def test_running_twice_changes_nothing(quiet_client, session, clock: Clock):
    walk_past(quiet_client, session, clock)
    runtime = quiet_client.app.state.runtime
    retention_job().run(runtime)
    before = (aggregates(session), count(session, ProximityEvent), count(session, Visit))

    again = retention_job().run(runtime)

    assert (again.events_deleted, again.visits_deleted, again.decisions_deleted) == (0, 0, 0)
    assert (aggregates(session), count(session, ProximityEvent), count(session, Visit)) == before


def test_late_reports_of_a_recent_day_are_counted_and_settled_days_are_final(
    quiet_client, session, clock: Clock
):
    charity, _, phone = walk_past(quiet_client, session, clock)
    runtime = quiet_client.app.state.runtime
    retention_job().run(runtime)
    late = RECENT + timedelta(hours=2)  # observed three days ago, reported now by a phone that was offline
    answer = quiet_client.post(
        "/mobile/v1/sightings", json=sighting("ios-late-01", late), headers=phone.headers
    )
    assert answer.json()["stored"] is True

    retention_job().run(runtime)

    assert aggregates(session)[(charity.site_id, date(2026, 11, 22))][:2] == (2, 2)
    assert aggregates(session)[(charity.site_id, date(2026, 11, 6))][:2] == (2, 1)


def test_the_operator_may_shorten_retention(quiet_client, session, clock: Clock):
    walk_past(quiet_client, session, clock)
    platform = session.scalars(select(PlatformSettings)).one()
    platform.retention_days = 2
    session.commit()

    report = retention_job().run(quiet_client.app.state.runtime)

    assert report.events_deleted == 3
    assert count(session, ProximityEvent) == 0
    assert len(aggregates(session)) == 2  # rolled up first


def test_nahbar_purge_runs_it_once_and_says_what_it_deleted(
    quiet_client, session, clock: Clock, database_url, monkeypatch
):
    walk_past(quiet_client, session, clock)
    monkeypatch.setenv("NAHBAR_DATABASE_URL", database_url)
    monkeypatch.setenv("NAHBAR_RETENTION_DAYS", "1")  # the CLI runs on the real clock, after the test's days
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["purge"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "deleted: 3 proximity events, 2 visits, 2 decisions" in result.output
    assert count(session, ProximityEvent) == 0
    assert count(session, PromptDecision) == 0
