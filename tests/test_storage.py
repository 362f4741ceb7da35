"""Repository behaviour and database invariants, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from server.core.const import EventKind
from server.core.security import KeySealer
from server.policy.live import SiteRef
from server.policy.repository import campaigns_at_site, histories
from server.presence.models import ProximityEvent, Visit
from server.presence.record import IngestConfig, Pending, Sighting, record_sightings
from server.prompts.models import PromptDecision
from server.subscribers.service import opt_in
from tests.conftest import TEST_SECRET, Clock
from tests.world import make_charity


@pytest.fixture
def subscriber(session, clock: Clock):
    opted = opt_in(
        session,
        KeySealer(TEST_SECRET),
        scopes=["volunteer"],
        language="de",
        consent_version="2026-11",
        rotation_exponent=10,
        now=clock(),
    )
    session.commit()
    return opted.subscriber


def _pending(charity, subscriber, key: str, when, *, kind: str = "enter", dwell_s: float = 0.0) -> Pending:
    site = SiteRef(charity.site_id, "Europe/Berlin", "de")
    sighting = Sighting(key, "phone", None, EventKind(kind), when, dwell_s=dwell_s)
    return Pending(subscriber.id, site, sighting, when)


CONFIG = IngestConfig(visit_gap=timedelta(seconds=120), prompt_ttl_s=600)


def _visits(session, subscriber) -> list[int]:
    return list(
        session.scalars(select(ProximityEvent.visit_id).where(ProximityEvent.subscriber_id == subscriber.id))
    )


def test_sightings_are_idempotent_per_key_within_and_across_batches(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    first = record_sightings(
        session,
        [_pending(charity, subscriber, "k-1", clock()), _pending(charity, subscriber, "k-1", clock())],
        CONFIG,
    )
    assert [r.duplicate for r in first] == [False, True]
    session.commit()
    again = record_sightings(
        session,
        [_pending(charity, subscriber, "k-1", clock()), _pending(charity, subscriber, "k-2", clock())],
        CONFIG,
    )
    assert [r.duplicate for r in again] == [True, False]
    session.commit()
    assert len(_visits(session, subscriber)) == 2


def test_a_person_who_no_longer_exists_is_dropped_unstored(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    ghost = _pending(charity, subscriber, "k-1", clock())
    ghost = Pending(uuid.uuid4(), ghost.site, ghost.sighting, ghost.received_at)
    [result] = record_sightings(session, [ghost], CONFIG)
    assert result.unknown
    assert result.decision is None
    assert session.scalar(select(func.count()).select_from(ProximityEvent)) == 0


def test_the_daily_prompt_slot_is_a_database_invariant(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    day = date(2026, 11, 25)
    [prompted] = record_sightings(
        session, [_pending(charity, subscriber, "k-1", clock(), kind="dwell", dwell_s=20)], CONFIG
    )
    session.commit()
    assert prompted.decision is not None
    assert prompted.decision.outcome == "prompted"

    def slots(on: date) -> int:
        return histories(session, [subscriber.id]).slots[(subscriber.id, on)]

    assert slots(day) == 1
    session.add(  # what a racing second worker would insert
        PromptDecision(
            subscriber_id=subscriber.id,
            site_id=charity.site_id,
            outcome="prompted",
            reason="prompted",
            decided_at=clock(),
            local_day=day,
            day_slot=0,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert slots(day) == 1
    assert slots(day + timedelta(days=1)) == 0


def test_sightings_within_the_gap_make_one_visit_and_later_ones_a_new_one(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    start = clock()
    record_sightings(
        session,
        [
            _pending(charity, subscriber, "a", start),
            _pending(charity, subscriber, "b", start + timedelta(seconds=100), kind="dwell", dwell_s=100),
        ],
        CONFIG,
    )
    session.commit()
    record_sightings(session, [_pending(charity, subscriber, "c", start + timedelta(seconds=219))], CONFIG)
    record_sightings(session, [_pending(charity, subscriber, "d", start + timedelta(seconds=400))], CONFIG)
    session.commit()
    first, second, third, fourth = _visits(session, subscriber)
    assert first == second == third != fourth
    visit = session.get_one(Visit, first)
    assert (visit.last_seen_at - visit.started_at).total_seconds() == 219
    assert visit.dwell_s == 219


def test_campaigns_at_site_loads_active_campaigns_with_variants(session, clock: Clock):
    active = make_charity(session, clock(), slug="a")
    paused = make_charity(session, clock(), slug="b", status="paused")
    [option] = campaigns_at_site(session, active.site_id)
    assert option.id == active.campaign_id
    assert sorted(v.language for v in option.variants) == ["de", "en"]
    assert campaigns_at_site(session, paused.site_id) == []


def test_identity_keys_are_sealed_at_rest(session, subscriber):
    assert len(subscriber.identity_key_sealed) == 12 + 16 + 16  # nonce + key + tag, never the bare key
    assert len(subscriber.device_token_hash) == 64  # a SHA-256 hex digest, not the token
