"""The person's compact history (server/policy/history.py) on SQLite and PostgreSQL: the caps hold across the
retention purge of the raw decisions and responses, the history stays bounded, and export and explain show
it. A prompt is given at a moment long ago by moving the test's clock back; the purge then runs at the
present, as the hourly job does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.core.db import make_engine
from server.core.migrate import upgrade
from server.core.security import pseudonym
from server.policy import history
from server.policy.decide import PastPrompt
from server.policy.explain import explain, find_subscriber
from server.policy.models import PersonHistory
from server.policy.repository import history_row, write_histories
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.retention.tasks import JOBS
from server.sites.models import Site
from server.subscribers.models import Subscriber
from server.tenancy.models import PlatformSettings
from tests.conftest import TEST_SECRET, Clock
from tests.world import Phone, enrol, event, make_charity, opt_in

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # a Wednesday noon in Berlin


def purge(client: TestClient) -> int:
    """The retention job at the clock's moment (14 days by default); the decisions it deleted."""
    [job] = [job for job in JOBS if job.name == "retention"]
    return job.run(client.app.state.runtime).decisions_deleted


def walk(client: TestClient, gateway: dict[str, str], phone: Phone, key: str, at: datetime) -> int:
    """A dwell long enough to be decided, at `at`; the prompts it led to."""
    answer = client.post(
        "/gateway/v1/events", json={"events": [event(key, phone, at, "dwell", 20)]}, headers=gateway
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["prompts"]


def latest_reason(session: Session) -> str:
    session.expire_all()
    return session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id.desc())).first() or ""


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def answer(client: TestClient, phone: Phone, kind: str) -> None:
    [prompt] = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]
    sent = client.post(
        f"/mobile/v1/me/prompts/{prompt['id']}/responses", json={"kind": kind}, headers=phone.headers
    )
    assert sent.status_code in (200, 201), sent.text


def stored_history(session: Session) -> PersonHistory:
    session.expire_all()
    return session.scalars(select(PersonHistory)).one()


def test_a_prompt_29_days_ago_still_counts_for_the_30_day_cap_after_its_decision_is_purged(
    quiet_client, session, clock: Clock
):
    first = make_charity(session, NOW, slug="hospiz")
    other = make_charity(session, NOW, slug="tafel")
    platform = session.scalars(select(PlatformSettings)).one()
    platform.max_prompts_per_month = 1
    session.commit()
    here, there = enrol(quiet_client, first.enrolment_code), enrol(quiet_client, other.enrolment_code)
    phone = opt_in(quiet_client)
    clock.now = NOW - timedelta(days=29)
    assert walk(quiet_client, here, phone, "evt-29-days-ago", clock()) == 1

    clock.now = NOW
    assert purge(quiet_client) == 1
    assert count(session, PromptDecision) == 0  # the raw decision is gone

    assert walk(quiet_client, there, phone, "evt-at-present", clock()) == 0
    assert latest_reason(session) == "global_monthly_cap"
    # Explain sees it too (the person was seen at the other charity's site just now).
    person = find_subscriber(
        session, TEST_SECRET, other.organisation_id, str(stored_history(session).subscriber_id)
    )
    assert person is not None
    site = session.get_one(Site, other.site_id)
    explained = explain(session, person, site, clock.advance(60), 30.0)
    assert explained.reason == "global_monthly_cap"
    assert explained.checks[-1].detail == "1 of 1 in 30 days"

    # Thirty days after that prompt it no longer counts.
    clock.now = NOW + timedelta(days=1, hours=1)
    assert walk(quiet_client, there, phone, "evt-a-month-on", clock()) == 1


def test_a_dismissal_100_days_ago_still_blocks_and_its_180_days_end(quiet_client, session, clock: Clock):
    charity = make_charity(session, NOW)
    gateway = enrol(quiet_client, charity.enrolment_code)
    phone = opt_in(quiet_client)
    clock.now = NOW - timedelta(days=100, minutes=1)
    assert walk(quiet_client, gateway, phone, "evt-100-days-ago", clock()) == 1
    dismissed_at = clock.advance(60)
    answer(quiet_client, phone, "dismissed")
    assert count(session, PromptResponse) == 1
    assert count(session, Delivery) >= 1

    clock.now = NOW
    assert purge(quiet_client) == 1
    assert (count(session, PromptResponse), count(session, Delivery)) == (0, 0)  # went with their decision

    assert walk(quiet_client, gateway, phone, "evt-at-present", clock()) == 0
    assert latest_reason(session) == "campaign_dismissed"
    export = quiet_client.get("/mobile/v1/me/export", headers=phone.headers).json()
    assert [d["reason"] for d in export["decisions"]] == ["campaign_dismissed"]  # those within retention
    kept = export["history"]
    assert [(p["campaign_id"], p["local_day"]) for p in kept["prompts"]] == [
        (charity.campaign_id, (NOW - timedelta(days=100)).date().isoformat())
    ]
    assert [(a["campaign_id"], datetime.fromisoformat(a["at"])) for a in kept["dismissed"]] == [
        (charity.campaign_id, dismissed_at)
    ]
    assert kept["accepted"] == []

    # Once the dismissal's 180 days are over, the campaign may ask again.
    clock.now = dismissed_at + timedelta(days=180, minutes=5)
    assert walk(quiet_client, gateway, phone, "evt-after-180-days", clock()) == 1


def test_an_acceptance_never_expires(quiet_client, session, clock: Clock):
    charity = make_charity(session, NOW)
    gateway = enrol(quiet_client, charity.enrolment_code)
    phone = opt_in(quiet_client)
    clock.now = NOW - timedelta(days=400)
    assert walk(quiet_client, gateway, phone, "evt-400-days-ago", clock()) == 1
    clock.advance(60)
    answer(quiet_client, phone, "accepted")

    clock.now = NOW
    assert purge(quiet_client) == 1
    assert count(session, PromptResponse) == 0

    assert walk(quiet_client, gateway, phone, "evt-at-present", clock()) == 0
    assert latest_reason(session) == "campaign_accepted"


def test_the_history_keeps_a_month_of_prompts_and_each_campaigns_latest(quiet_client, session, clock: Clock):
    charity = make_charity(session, NOW)
    gateway = enrol(quiet_client, charity.enrolment_code)
    phone = opt_in(quiet_client)
    assert walk(quiet_client, gateway, phone, "evt-first", clock()) == 1  # makes the person's row
    person = stored_history(session).subscriber_id

    def ago(days: int, campaign: int) -> PastPrompt:
        at = NOW - timedelta(days=days)
        return PastPrompt(at, at.date(), 900 + campaign, 9000 + campaign)

    # As a longer-running policy would have left it: campaign 1 asked three times long ago (dismissed in
    # between), campaign 2 once 40 days ago, campaign 3 twice within the month.
    old = [ago(300, 1), ago(200, 1), ago(100, 1), ago(40, 2), ago(20, 3), ago(10, 3)]
    doc = [[p.at.isoformat(), p.local_day.isoformat(), p.organisation_id, p.campaign_id] for p in old]
    write_histories(session, [history_row(person, doc, NOW)])
    session.commit()
    assert len(stored_history(session).prompts) == 6

    clock.now = NOW + timedelta(days=1)
    other = make_charity(session, clock(), slug="tafel")
    assert walk(quiet_client, enrol(quiet_client, other.enrolment_code), phone, "evt-next-day", clock()) == 1

    kept = history.prompts_of(stored_history(session).prompts)
    assert [(p.campaign_id, (NOW - p.at).days) for p in kept] == [
        (9001, 100),  # campaign 1's latest only: "once" needs it, the caps no longer do
        (9002, 40),
        (9003, 20),
        (9003, 10),
        (other.campaign_id, -1),
    ]


def test_compact_keeps_the_last_30_days_and_each_campaigns_latest():
    now = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)

    def at(days: float, campaign: int) -> PastPrompt:
        moment = now - timedelta(days=days)
        return PastPrompt(moment, moment.date(), 7, campaign)

    prompts = [at(31, 1), at(30, 1), at(29.9, 1), at(45, 2), at(60, 2), at(1, 3)]
    assert history.compact(prompts, now) == [at(45, 2), at(29.9, 1), at(1, 3)]
    assert history.prompts_of(history.prompts_doc(prompts, now)) == history.compact(prompts, now)
    assert history.compact([], now) == []
    assert history.answers_of(history.answers_doc({5: now, 12: now - timedelta(days=1)})) == {
        5: now,
        12: now - timedelta(days=1),
    }
    assert date.fromisoformat(history.prompts_doc(prompts, now)[0][1]) == at(45, 2).local_day


def test_explain_finds_the_caps_of_someone_seen_within_retention_by_their_pseudonym(
    quiet_client, session, clock: Clock
):
    charity = make_charity(session, NOW)
    gateway = enrol(quiet_client, charity.enrolment_code)
    phone = opt_in(quiet_client)
    clock.now = NOW - timedelta(days=20)
    assert walk(quiet_client, gateway, phone, "evt-20-days-ago", clock()) == 1
    clock.now = NOW
    purge(quiet_client)
    walk(
        quiet_client, gateway, phone, "evt-at-present", clock()
    )  # suppressed: the campaign asked once already
    person_id = stored_history(session).subscriber_id
    alias = pseudonym(TEST_SECRET, charity.organisation_id, person_id)
    person = find_subscriber(session, TEST_SECRET, charity.organisation_id, alias)
    assert person is not None

    explained = explain(session, person, session.get_one(Site, charity.site_id), clock(), 30.0)

    assert explained.reason == "campaign_once"
    assert (
        explained.checks[-1].detail
        == f"campaign {charity.campaign_id}: prompted {NOW - timedelta(days=20):%Y-%m-%d}"
    )


def _fill_of_migration_0012():
    """The fill step of migration 0012 (its module name starts with a digit: loaded by path)."""
    import importlib.util

    import server.migrations.versions as versions

    path = Path(versions.__file__).parent / "0012_person_history_compact.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._fill


def test_the_migration_fills_the_history_from_what_is_stored(empty_database_url):
    """Upgrading a running platform: the history of each person is made from the decisions and answers
    stored before, as the live path would have kept it. The rows are written with today's models (which a
    schema of 0011 could not take), so the fill runs on today's schema with the history table emptied."""
    engine = make_engine(empty_database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        a, b, c = (make_charity(session, now, slug=slug) for slug in ("hospiz", "tafel", "heim"))
        person = Subscriber(
            device_token_hash="x" * 64,
            identity_key_sealed=b"k" * 44,
            rotation_exponent=10,
            scopes=["volunteer"],
        )
        session.add(person)
        session.flush()

        def decision(charity, days: float, outcome: str = "prompted") -> PromptDecision:
            at = now - timedelta(days=days)
            row = PromptDecision(
                subscriber_id=person.id,
                site_id=charity.site_id,
                campaign_id=charity.campaign_id,
                outcome=outcome,
                reason="prompted" if outcome == "prompted" else "global_daily_cap",
                decided_at=at,
                local_day=at.date() if outcome == "prompted" else None,
                day_slot=0 if outcome == "prompted" else None,
            )
            session.add(row)
            session.flush()
            return row

        old_a = decision(a, 100)
        decision(a, 10)
        decision(b, 40)
        last_b = decision(b, 5)
        decision(c, 200)
        decision(c, 1, outcome="suppressed")
        session.add_all(
            [
                PromptResponse(decision_id=old_a.id, kind="dismissed", at=now - timedelta(days=99)),
                PromptResponse(decision_id=old_a.id, kind="opened", at=now - timedelta(days=99)),
                PromptResponse(decision_id=last_b.id, kind="accepted", at=now - timedelta(days=4)),
            ]
        )
        session.commit()

    with engine.begin() as connection:
        connection.execute(delete(PersonHistory))
        _fill_of_migration_0012()(connection, now)

    with Session(engine) as session:
        [row] = session.scalars(select(PersonHistory)).all()
        kept = history.prompts_of(row.prompts)
        assert [(p.campaign_id, round((now - p.at) / timedelta(days=1))) for p in kept] == [
            (c.campaign_id, 200),  # campaign c's latest, however old
            (a.campaign_id, 10),  # a's prompt 100 days ago went: a later one is kept
            (b.campaign_id, 5),  # b's of 40 days ago went too
        ]
        assert [p.organisation_id for p in kept] == [c.organisation_id, a.organisation_id, b.organisation_id]
        assert history.answers_of(row.dismissed) == {a.campaign_id: now - timedelta(days=99)}
        assert history.answers_of(row.accepted) == {b.campaign_id: now - timedelta(days=4)}
    engine.dispose()
