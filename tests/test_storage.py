"""Repository behaviour and database invariants, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from server.core.security import KeySealer
from server.policy.repository import campaigns_at_site, prompts_on_day
from server.presence.models import Visit
from server.presence.repository import insert_event, open_visit
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


def _event(charity, subscriber, key: str, when) -> dict[str, object]:
    return {
        "gateway_id": 1,
        "idempotency_key": key,
        "site_id": charity.site_id,
        "subscriber_id": subscriber.id,
        "kind": "enter",
        "observed_at": when,
        "received_at": when,
    }


def test_insert_event_is_idempotent_per_gateway_and_key(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    first = insert_event(session, _event(charity, subscriber, "k-1", clock()))
    assert isinstance(first, int)
    assert insert_event(session, _event(charity, subscriber, "k-1", clock())) is None
    assert isinstance(insert_event(session, _event(charity, subscriber, "k-2", clock())), int)
    session.commit()


def test_the_daily_prompt_slot_is_a_database_invariant(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    day = date(2026, 11, 25)

    def prompt(slot: int) -> PromptDecision:
        return PromptDecision(
            subscriber_id=subscriber.id,
            site_id=charity.site_id,
            outcome="prompted",
            reason="prompted",
            decided_at=clock(),
            local_day=day,
            day_slot=slot,
        )

    session.add(prompt(0))
    session.commit()
    assert prompts_on_day(session, subscriber.id, day) == 1
    session.add(prompt(0))  # what a racing second worker would insert
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert prompts_on_day(session, subscriber.id, day) == 1
    assert prompts_on_day(session, subscriber.id, day + timedelta(days=1)) == 0


def test_open_visit_finds_only_recent_visits_of_that_person_and_site(session, subscriber, clock: Clock):
    charity = make_charity(session, clock())
    visit = Visit(
        subscriber_id=subscriber.id, site_id=charity.site_id, started_at=clock(), last_seen_at=clock()
    )
    session.add(visit)
    session.commit()
    assert open_visit(session, subscriber.id, charity.site_id, clock() - timedelta(seconds=60)) == visit
    assert open_visit(session, subscriber.id, charity.site_id, clock() + timedelta(seconds=1)) is None
    assert open_visit(session, uuid.uuid4(), charity.site_id, clock() - timedelta(seconds=60)) is None


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
