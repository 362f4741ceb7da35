"""The operator suspends a charity: its campaigns stop running at once (no prompt, no dwell mark for its
gateways), cannot be started, and the suspension is lifted the same way; only the operator may do either,
with If-Match, and both are in the audit log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit.models import AuditEntry
from server.campaigns.models import Campaign
from server.tenancy.models import Organisation
from tests.admin_world import API, add_user, signed_in
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in


def sighting(client, gateway, phone, now, key):
    batch = {
        "events": [
            event(f"{key}-enter-0001", phone, now - timedelta(seconds=20)),
            event(f"{key}-dwell-0002", phone, now, "dwell", 20),
        ]
    }
    answer = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert answer.status_code == 200, answer.text
    return answer.json()["prompts"]


def test_a_suspended_charity_prompts_nobody_until_the_suspension_is_lifted(
    client, session: Session, clock: Clock
):
    charity = make_charity(session, clock())
    session.get(Campaign, charity.campaign_id).cta_url = "https://hospiz.example/helfen"
    operator = signed_in(session, add_user(session, "op@nahbar.example", operator=True), clock())
    owner = signed_in(
        session, add_user(session, "owner@hospiz.example", roles={charity.organisation_id: "owner"}), clock()
    )
    session.commit()
    gateway = enrol(client, charity.enrolment_code)
    org_url = f"{API}/organisations/{charity.organisation_id}"
    marks = client.get("/gateway/v1/config", headers=gateway).json()["tracker"]["dwell_marks"]
    assert marks  # the running campaign's dwell marks

    refused = client.post(f"{org_url}/suspend", headers=owner | {"If-Match": '"v1"'})
    assert refused.status_code == 403, refused.text
    assert client.post(f"{org_url}/suspend", headers=operator).status_code == 428
    suspended = client.post(f"{org_url}/suspend", headers=operator | {"If-Match": '"v1"'})
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["suspended_at"] is not None
    assert suspended.headers["etag"] == '"v2"'

    assert sighting(client, gateway, opt_in(client), clock(), "first") == 0
    assert client.get("/gateway/v1/config", headers=gateway).json()["tracker"]["dwell_marks"] == []
    campaign_url = f"{API}/campaigns/{charity.campaign_id}"
    assert client.post(f"{campaign_url}/pause", headers=owner).status_code == 200
    again = client.post(f"{campaign_url}/activate", headers=owner)
    assert again.status_code == 422, again.text
    assert "organisation.suspended_at" in {e["field"] for e in again.json()["errors"]}

    lifted = client.post(f"{org_url}/unsuspend", headers=operator | {"If-Match": '"v2"'})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["suspended_at"] is None
    assert client.post(f"{campaign_url}/activate", headers=owner).status_code == 200
    assert sighting(client, gateway, opt_in(client), clock(), "second") == 1

    session.expire_all()
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.organisation_id == charity.organisation_id)
    ).all()
    assert {"organisation.suspend", "organisation.unsuspend"} <= set(actions)
    assert session.get(Organisation, charity.organisation_id).suspended_at is None
