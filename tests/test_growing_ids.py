"""The tables that grow with every sighting number their rows past 2^31 - 1 (migration 0009): a platform at
the plan's peak would use up 32-bit ids within days, and every gateway's events would then fail.

PostgreSQL numbers them by sequences, which the test moves past 32 bits before a sighting goes through the
whole path: the event, its visit, the decision, its deliveries, the phone's inbox, its landing page and the
person's answer. SQLite's INTEGER PRIMARY KEY is a 64-bit rowid by construction; the phone API's bounds on
ids hold on both."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.presence.models import ProximityEvent, Visit
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

PAST_32_BITS = 3_000_000_000
GROWING = ["visits", "proximity_events", "prompt_decisions", "deliveries", "prompt_responses"]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_prompt_goes_through_with_ids_past_32_bits(client, session: Session, clock: Clock) -> None:
    for table in GROWING:
        session.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :at)"), {"at": PAST_32_BITS}
        )
    session.commit()
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    walker = opt_in(client)

    answer = client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-big-1", walker, clock(), "dwell", 20)]},
        headers=gateway,
    )
    assert answer.status_code == 200, answer.text
    [prompt] = client.get("/mobile/v1/me/prompts", headers=walker.headers).json()["prompts"]
    assert prompt["id"] > PAST_32_BITS
    assert client.get(urlsplit(prompt["landing_url"]).path).status_code == 200  # records it "opened"
    responded = client.post(
        f"/mobile/v1/me/prompts/{prompt['id']}/responses", json={"kind": "accepted"}, headers=walker.headers
    )
    assert responded.status_code == 201, responded.text

    session.expire_all()
    decision = session.get(PromptDecision, prompt["id"])
    assert decision is not None
    assert decision.event_id is not None
    assert decision.visit_id is not None
    stored = session.get(ProximityEvent, decision.event_id)
    assert stored is not None
    assert stored.visit_id == decision.visit_id
    assert session.get(Visit, decision.visit_id) is not None
    ids = [
        decision.visit_id,
        decision.event_id,
        *session.scalars(select(Delivery.id).where(Delivery.decision_id == decision.id)),
        *session.scalars(select(PromptResponse.id).where(PromptResponse.decision_id == decision.id)),
    ]
    assert len(ids) >= 4
    assert all(row_id > PAST_32_BITS for row_id in ids)


def test_the_phone_api_takes_prompt_ids_past_32_bits_and_no_others(client) -> None:
    walker = opt_in(client)
    unknown = client.post(
        f"/mobile/v1/me/prompts/{PAST_32_BITS}/responses", json={"kind": "opened"}, headers=walker.headers
    )
    assert unknown.status_code == 404, unknown.text  # a well-formed id of no prompt of this phone's
    too_big = client.post(
        f"/mobile/v1/me/prompts/{2**63}/responses", json={"kind": "opened"}, headers=walker.headers
    )
    assert too_big.status_code == 422
    # Push channels and exclusions keep 32-bit ids: a larger one is refused, not looked up (an error there).
    for path in ("push-channels", "exclusions"):
        refused = client.delete(f"/mobile/v1/me/{path}/{PAST_32_BITS}", headers=walker.headers)
        assert refused.status_code == 422, (path, refused.text)
