"""Opt-in -> prompt -> export -> withdrawal and erasure in one call, checked table by table afterwards."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

import server.models  # noqa: F401 - every domain's tables in Base.metadata
from server.app import create_app
from server.campaigns.models import PairedDevice
from server.core.db import Base
from server.policy.models import PersonHistory
from server.presence.models import ProximityEvent, Visit
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.subscribers.models import ConsentRecord, Exclusion, PushChannel
from tests.admin_world import API, add_user, signed_in
from tests.conftest import Clock
from tests.delivery_world import every_push_service
from tests.test_mobile_me import web_push
from tests.test_sightings import sighting, with_region
from tests.world import enrol, event, make_charity, opt_in

# Export key -> the table its rows come from: each kind must be in the export and gone after erasure.
EXPORTED = {
    "consent_records": ConsentRecord,
    "push_channels": PushChannel,
    "exclusions": Exclusion,
    "proximity_events": ProximityEvent,
    "visits": Visit,
    "decisions": PromptDecision,
    "deliveries": Delivery,
    "responses": PromptResponse,
    "test_devices": PairedDevice,
    "history": PersonHistory,  # one object, not a list: what the caps keep beyond the raw decisions
}


@pytest.fixture
def client(settings, clock, tmp_path):
    """Every push service configured, so that phones may register channels of each kind."""
    with TestClient(create_app(every_push_service(settings, tmp_path), clock=clock)) as client:
        yield client


def subscriber_columns(table: Table) -> list:
    """Columns that point at a subscriber: a foreign key to subscribers.id, or named like one."""
    return [
        column
        for column in table.columns
        if any(fk.column.table.name == "subscribers" for fk in column.foreign_keys)
        or "subscriber" in column.name
        or (table.name == "subscribers" and column.primary_key)
    ]


def rows_referring_to(session: Session, subscriber_id: uuid.UUID) -> dict[str, int]:
    found = {}
    for table in Base.metadata.sorted_tables:
        columns = subscriber_columns(table)
        if columns:
            where = or_(*(column == subscriber_id for column in columns))
            found[table.name] = session.scalar(select(func.count()).select_from(table).where(where)) or 0
    return found


def test_the_export_has_a_key_for_every_table_that_refers_to_a_subscriber():
    """A new table holding data about a person fails here until the export (and this map) includes it."""
    referring = {table.name for table in Base.metadata.sorted_tables if subscriber_columns(table)}
    exported = {model.__tablename__ for model in EXPORTED.values()}
    assert referring - {"subscribers"} - exported == set()
    assert {"deliveries", "prompt_responses"} <= exported  # reached through the person's decisions


def test_export_then_withdrawal_erases_everything_and_keeps_only_unlinked_proof(
    client, session, clock: Clock
):
    charity = with_region(session, make_charity(session, clock()))
    other = make_charity(session, clock(), slug="tafel")
    editor = add_user(session, "editor@tafel.example", roles={other.organisation_id: "editor"})
    editor_headers = signed_in(session, editor, clock())
    session.commit()
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client, ["volunteer"])
    bystander = opt_in(client)
    subscription = web_push("https://127.0.0.1:9/wpush/v2/erase-me")  # pushed to nothing, on this machine
    assert (
        client.post("/mobile/v1/me/push-channels", json=subscription, headers=phone.headers).status_code
        == 201
    )
    clock.advance(60)
    client.patch(
        "/mobile/v1/me/preferences",
        json={"scopes": ["volunteer", "donation"], "quiet_hours": {"start": "22:00", "end": "07:00"}},
        headers=phone.headers,
    )
    walk = [event("evt-er-0001", phone, clock()), event("evt-er-0002", phone, clock(), "dwell", 20)]
    batch = client.post("/gateway/v1/events", json={"events": walk}, headers=gateway)
    assert batch.json()["prompts"] == 1
    decision_id = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"][0]["id"]
    for kind in ("opened", "not_here"):
        client.post(
            f"/mobile/v1/me/prompts/{decision_id}/responses", json={"kind": kind}, headers=phone.headers
        )
    # The iOS path: the phone reports its own sighting of the site's iBeacon (no gateway).
    clock.advance(30)
    own = client.post("/mobile/v1/sightings", json=sighting("ios-er-0001", clock()), headers=phone.headers)
    assert own.status_code == 200, own.text
    # "Not from this charity", and the phone paired as the other charity's test device, which sends a test.
    not_this_org = {"organisation_id": other.organisation_id}
    excluded = client.post("/mobile/v1/me/exclusions", json=not_this_org, headers=phone.headers)
    assert excluded.status_code == 201, excluded.text
    org_url = f"{API}/organisations/{other.organisation_id}"
    code = client.post(f"{org_url}/test-devices/pairing-codes", headers=editor_headers).json()["code"]
    paired = client.post(
        "/mobile/v1/me/test-device", json={"code": code, "label": "Anna's phone"}, headers=phone.headers
    )
    assert paired.status_code == 201, paired.text
    sent = client.post(
        f"{org_url}/campaigns/{other.campaign_id}/test-send",
        json={"test_device_id": paired.json()["id"]},
        headers=editor_headers,
    )
    assert sent.status_code == 201, sent.text

    # Export: everything about the person, each kind of record present.
    answer = client.get("/mobile/v1/me/export", headers=phone.headers)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="nahbar-export-2026-11-25.json"'
    export = answer.json()
    subscriber_id = uuid.UUID(export["profile"]["id"])
    assert export["profile"]["scopes"] == ["donation", "volunteer"]
    assert export["profile"]["preferences"] == {"quiet_hours": {"start": "22:00", "end": "07:00"}}
    for key in EXPORTED:
        assert export[key], f"the export lacks {key}"
    assert len(export["consent_records"]) == 2
    events = [(e["source"], e["gateway_id"] is None) for e in export["proximity_events"]]
    assert events == [("gateway", False), ("gateway", False), ("phone", True)]
    assert [(d["outcome"], d["reason"]) for d in export["decisions"]] == [
        ("suppressed", "dwell_too_short"),  # the gateway's enter
        ("prompted", "prompted"),  # its dwell; the phone's own sighting joins that decided visit
        ("test", "test_send"),
    ]
    assert {r["kind"] for r in export["responses"]} == {"opened", "not_here"}
    assert export["push_channels"][0]["endpoint"] == subscription["endpoint"]
    assert export["push_channels"][0]["keys"] == subscription["keys"]
    assert [(x["site_id"], x["organisation_id"]) for x in export["exclusions"]] == [
        (charity.site_id, None),
        (None, other.organisation_id),
    ]
    assert [(d["organisation_id"], d["label"]) for d in export["test_devices"]] == [
        (other.organisation_id, "Anna's phone")
    ]
    assert export["deliveries"][0]["decision_id"] == decision_id
    assert [(p["organisation_id"], p["campaign_id"]) for p in export["history"]["prompts"]] == [
        (charity.organisation_id, charity.campaign_id)  # the test send counts for no cap: not in it
    ]
    assert set(rows_referring_to(session, subscriber_id).values()) != {0}

    # Withdrawal and erasure in one call.
    erased_at = clock.advance(5)
    index = client.app.state.runtime.eid_index
    assert index.resolve(bytes.fromhex(phone.eid_at(erased_at))) == subscriber_id
    assert client.delete("/mobile/v1/me", headers=phone.headers).status_code == 204
    assert index.resolve(bytes.fromhex(phone.eid_at(erased_at))) is None  # at once, not at the next rebuild
    for url in ("/mobile/v1/me/prompts", "/mobile/v1/me/export", "/mobile/v1/me/preferences"):
        assert client.get(url, headers=phone.headers).status_code == 401
    assert client.delete("/mobile/v1/me", headers=phone.headers).status_code == 401

    # The phone keeps advertising: its EIDs resolve to no one, nothing is stored, nobody is prompted.
    for step in range(3):
        later = clock.advance(24 * 3600)  # new days, new EID windows, no cap in the way
        walk = [event(f"evt-after-{step}", phone, later)]
        answer = client.post("/gateway/v1/events", json={"events": walk}, headers=gateway)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == [f"evt-after-{step}"]
        assert answer.json()["prompts"] == 0
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ProximityEvent)) == 0
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == 0

    # Table by table: no row refers to the subscriber (a new table with a subscriber column is covered too).
    referring = rows_referring_to(session, subscriber_id)
    assert {"subscribers", "consent_records", "push_channels", "exclusions", "visits"} <= set(referring)
    assert {"proximity_events", "prompt_decisions"} <= set(referring)
    assert referring == dict.fromkeys(referring, 0)
    # The rows reached only through a decision (deliveries, responses) are gone too, by the ids exported.
    for key, model in EXPORTED.items():
        if model is PersonHistory:
            continue  # keyed by the person: the table-by-table check above covers it
        ids = [row["id"] for row in export[key]]
        left = session.scalars(select(model.id).where(model.id.in_(ids))).all()
        assert left == ([] if model is not ConsentRecord else ids), key
    # Nor does any value anywhere still hold the id or the push endpoint.
    needles = (str(subscriber_id), subscriber_id.hex, str(subscription["endpoint"]))
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).all():
            text = repr(tuple(row))
            assert not any(needle in text for needle in needles), table.name

    # What remains: the consent records as proof, unlinked and marked withdrawn.
    proof = session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)).all()
    mine = [record for record in proof if record.id in {r["id"] for r in export["consent_records"]}]
    assert [(r.subscriber_id, r.text_version, r.scopes) for r in mine] == [
        (None, "2026-11", ["volunteer"]),
        (None, "2026-11", ["donation", "volunteer"]),
    ]
    assert mine[0].withdrawn_at == mine[1].given_at  # superseded by the scope change
    assert mine[1].withdrawn_at == erased_at

    # The bystander is untouched.
    assert client.get("/mobile/v1/me/preferences", headers=bystander.headers).status_code == 200
