"""The live path's last guards on PostgreSQL, where a batch writes its visits, events, decisions and
deliveries in one round trip with ids drawn beforehand: what another transaction committed between this
batch's reads and its writes must not leave a decision without its event or a delivery without its decision.

Both races need a second writer, which SQLite (one writer at a time, taken before the reads) rules out; the
other transaction here writes plainly, as a misbehaving gateway or a bug elsewhere could, and stays open until
the batch waits on it inside the database."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from server.core.const import EventKind, Outcome
from server.core.db import make_sessionmaker
from server.policy.decide import Reason
from server.policy.live import SiteRef
from server.policy.models import PersonHistory
from server.presence.batcher import SightingBatcher
from server.presence.models import ProximityEvent
from server.presence.record import Pending, Recorded, Sighting
from server.prompts.models import Delivery, PromptDecision
from server.sites.models import Gateway
from tests.conftest import Clock
from tests.test_sighting_batcher import Call, _blocked_in_database, _people, _wait_until
from tests.world import make_charity

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _dwell(site_id: int, gateway_id: int, person: uuid.UUID, key: str, clock: Clock) -> Pending:
    """A gateway's sighting of `person` that the policy prompts: daytime, long enough a dwell."""
    now = clock()
    sighting = Sighting(key, "gateway", gateway_id, EventKind.DWELL, now, -60.0, 1.5, 60.0)
    return Pending(person, SiteRef(site_id, "Europe/Berlin", "de"), sighting, now)


def _kept(session: Session, person: uuid.UUID) -> list[object]:
    """The prompts the person's history holds (none without a row)."""
    session.expire_all()
    return session.scalar(select(PersonHistory.prompts).where(PersonHistory.subscriber_id == person)) or []


def _decisions(session: Session, person: uuid.UUID) -> list[tuple[str, str, int | None]]:
    session.expire_all()
    rows = session.execute(
        select(PromptDecision.outcome, PromptDecision.reason, PromptDecision.day_slot)
        .where(PromptDecision.subscriber_id == person)
        .order_by(PromptDecision.id)
    )
    return [tuple(row) for row in rows]


@pytest.mark.timeout(60)
def test_an_event_another_transaction_stored_meanwhile_gets_no_decision(
    engine: Engine, session: Session, clock: Clock
) -> None:
    charity = make_charity(session, clock())
    gateway_id = session.scalar(select(Gateway.id).where(Gateway.site_id == charity.site_id))
    assert gateway_id is not None
    other, person = _people(session, clock, 2)
    batcher = SightingBatcher(make_sessionmaker(engine))
    now = clock()

    with engine.connect() as rival:
        # The same gateway key for another person, not committed yet: the batch's read of stored keys does not
        # see it, and its insert of the event waits for this transaction.
        rival.execute(
            insert(ProximityEvent).values(
                gateway_id=gateway_id,
                idempotency_key="k1",
                site_id=charity.site_id,
                subscriber_id=other,
                kind="dwell",
                observed_at=now,
                received_at=now,
                dwell_s=60.0,
                source="gateway",
            )
        )
        call = Call(batcher, engine, [_dwell(charity.site_id, gateway_id, person, "k1", clock)])
        call.start()
        _wait_until(lambda: _blocked_in_database(engine), "the batch's event insert waits on the rival")
        rival.commit()

    assert call.answer() == [Recorded(duplicate=True)]
    assert _decisions(session, person) == []  # no decision pointing at an event that is not there
    assert _kept(session, person) == []  # nor a prompt in the history that was never given
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert session.scalars(select(ProximityEvent.subscriber_id)).all() == [other]


@pytest.mark.timeout(60)
def test_a_prompt_whose_day_slot_was_taken_meanwhile_is_recorded_suppressed_without_deliveries(
    engine: Engine, session: Session, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    charity = make_charity(session, clock())
    gateway_id = session.scalar(select(Gateway.id).where(Gateway.site_id == charity.site_id))
    assert gateway_id is not None
    [person] = _people(session, clock, 1)
    batcher = SightingBatcher(make_sessionmaker(engine))
    caplog.set_level(logging.WARNING, logger="nahbar.decisions")
    now = clock()
    day = now.astimezone(ZoneInfo("Europe/Berlin")).date()

    with engine.connect() as rival:
        # A prompt for the same person and day in slot 0, written past the person's lock (which only the live
        # path takes) and not committed: the batch's history read misses it, its decision takes slot 0 too.
        rival.execute(
            insert(PromptDecision).values(
                subscriber_id=person,
                site_id=charity.site_id,
                campaign_id=charity.campaign_id,
                outcome=Outcome.PROMPTED,
                reason=Reason.PROMPTED,
                decided_at=now,
                local_day=day,
                day_slot=0,
                expires_at=now + timedelta(minutes=10),
            )
        )
        call = Call(batcher, engine, [_dwell(charity.site_id, gateway_id, person, "k1", clock)])
        call.start()
        _wait_until(lambda: _blocked_in_database(engine), "the batch's decision insert waits on the rival")
        rival.commit()

    [answer] = call.answer()  # answered, not failed: the deliveries' insert skipped the missing decision
    assert answer.decision is not None
    assert (answer.decision.outcome, answer.decision.reason) == (Outcome.SUPPRESSED, Reason.GLOBAL_DAILY_CAP)
    assert _decisions(session, person) == [
        (Outcome.PROMPTED, Reason.PROMPTED, 0),  # the rival's
        (Outcome.SUPPRESSED, Reason.GLOBAL_DAILY_CAP, None),
    ]
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert _kept(session, person) == []  # the suppressed prompt was taken out of the history again
    assert any("day slot taken" in record.getMessage() for record in caplog.records)
