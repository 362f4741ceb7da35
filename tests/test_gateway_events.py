"""The first end-to-end path over HTTP, on SQLite and PostgreSQL: enrol, post events, decide, inbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign
from server.presence.models import ProximityEvent, Visit
from server.prompts.models import PromptDecision
from server.sites.models import Gateway
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_event_batch_prompts_the_phone_and_a_repeat_stores_nothing(client, session, clock: Clock):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client, ["volunteer"], language="en")
    batch = {
        "events": [event("evt-0001-a", phone, clock()), event("evt-0002-a", phone, clock(), "dwell", 20)]
    }

    first = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "accepted": ["evt-0001-a", "evt-0002-a"],
        "duplicates": [],
        "rejected": [],
        "prompts": 1,
    }

    inbox = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]
    assert [(p["title"], p["language"], p["campaign_kind"]) for p in inbox] == [("Help?", "en", "volunteer")]

    stored = (count(session, ProximityEvent), count(session, PromptDecision), count(session, Visit))
    again = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert again.status_code == 200
    assert again.json() == {
        "accepted": [],
        "duplicates": ["evt-0001-a", "evt-0002-a"],
        "rejected": [],
        "prompts": 0,
    }
    assert (count(session, ProximityEvent), count(session, PromptDecision), count(session, Visit)) == stored


def test_unknown_gateway_token_is_401_problem_json(client):
    body = {"events": [{"id": "evt-00000001"}]}
    for headers in ({"Authorization": "Bearer ngw_nonsense"}, {}):
        answer = client.post("/gateway/v1/events", json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unauthorized"


def test_malformed_items_are_named_and_the_valid_ones_are_kept(client, session, clock: Clock):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    bad_time = event("evt-bad-time", phone, clock()) | {"observed_at": "yesterday"}
    bad_kind = event("evt-bad-kind", phone, clock()) | {"kind": "loiter"}
    batch = {"events": [event("evt-good-1", phone, clock(), "dwell", 20), bad_time, bad_kind]}

    answer = client.post("/gateway/v1/events", json=batch, headers=gateway)

    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert "events[1].observed_at" in problem["detail"]
    assert "events[2].kind" in problem["detail"]
    assert problem["accepted"] == ["evt-good-1"]
    assert [(r["index"], r["id"]) for r in problem["rejected"]] == [(1, "evt-bad-time"), (2, "evt-bad-kind")]
    assert [e["field"] for e in problem["rejected"][0]["errors"]] == ["events[1].observed_at"]
    assert count(session, ProximityEvent) == 1
    assert len(client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]) == 1


def test_an_envelope_that_is_not_a_batch_is_422_and_names_the_field(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    answer = client.post("/gateway/v1/events", json={"items": []}, headers=gateway)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"events", "items"}
    too_many = {"events": [{"id": f"evt-{n:08d}"} for n in range(501)]}
    assert client.post("/gateway/v1/events", json=too_many, headers=gateway).status_code == 422


def test_unresolvable_eids_are_dropped_without_storing(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    foreign = {
        "id": "evt-foreign-1",
        "kind": "enter",
        "eid": "0123456789abcdef",
        "observed_at": clock().isoformat(),
    }
    answer = client.post("/gateway/v1/events", json={"events": [foreign]}, headers=gateway)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == ["evt-foreign-1"]
    assert count(session, ProximityEvent) == 0
    assert count(session, Visit) == 0


def test_one_prompt_per_person_per_day_and_the_reason_is_recorded(client, session, clock: Clock):
    hospice = make_charity(session, clock(), slug="hospiz", kind="volunteer")
    foodbank = make_charity(session, clock(), slug="tafel", kind="donation")
    at_hospice, at_foodbank = enrol(client, hospice.enrolment_code), enrol(client, foodbank.enrolment_code)
    phone = opt_in(client)

    client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-h-00001", phone, clock(), "dwell", 20)]},
        headers=at_hospice,
    )
    later = clock.advance(3600)
    answer = client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-t-00001", phone, later, "dwell", 20)]},
        headers=at_foodbank,
    )
    assert answer.json()["prompts"] == 0

    session.expire_all()
    reasons = session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id)).all()
    assert reasons == ["prompted", "global_daily_cap"]
    clock.advance(24 * 3600)  # the next local day
    answer = client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-t-00002", phone, clock(), "dwell", 20)]},
        headers=at_foodbank,
    )
    assert answer.json()["prompts"] == 1


def test_consent_must_cover_the_campaign_kind(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock(), kind="donation").enrolment_code)
    phone = opt_in(client, ["volunteer"])
    answer = client.post(
        "/gateway/v1/events", json={"events": [event("evt-s-00001", phone, clock())]}, headers=gateway
    )
    assert answer.json()["prompts"] == 0
    assert session.scalar(select(PromptDecision.reason)) == "scope_not_consented"
    assert client.get("/mobile/v1/me/prompts", headers=phone.headers).json() == {"prompts": []}


def test_no_prompt_without_a_running_campaign_or_a_site_time_zone(client, session, clock: Clock):
    paused = enrol(client, make_charity(session, clock(), slug="a", status="paused").enrolment_code)
    no_zone = enrol(client, make_charity(session, clock(), slug="b", timezone=None).enrolment_code)
    phone = opt_in(client)
    client.post("/gateway/v1/events", json={"events": [event("evt-p-00001", phone, clock())]}, headers=paused)
    client.post(
        "/gateway/v1/events", json={"events": [event("evt-z-00001", phone, clock())]}, headers=no_zone
    )
    reasons = session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id)).all()
    assert reasons == ["no_active_campaign", "site_no_timezone"]


def test_a_walk_past_across_an_eid_rotation_is_one_visit(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    window = 1 << phone.k
    start = clock.advance(window - int(clock().timestamp()) % window - 20)  # 20 s before a rotation
    before = phone.eid_at(start)
    after_time = clock.advance(40)
    assert phone.eid_at(after_time) != before
    events = [event("evt-r-00001", phone, start), event("evt-r-00002", phone, after_time, "dwell", 40)]
    answer = client.post("/gateway/v1/events", json={"events": events}, headers=gateway)
    assert answer.json()["accepted"] == ["evt-r-00001", "evt-r-00002"]
    assert count(session, Visit) == 1
    assert session.scalar(select(Visit.dwell_s)) == 40


def test_events_from_the_future_are_rejected(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    future = event("evt-f-00001", phone, clock()) | {"observed_at": clock.now.replace(year=2027).isoformat()}
    answer = client.post("/gateway/v1/events", json={"events": [future]}, headers=gateway)
    assert answer.status_code == 422
    assert answer.json()["rejected"][0]["errors"][0]["field"] == "events[0].observed_at"


def test_times_outside_the_sane_window_are_rejected_per_item_and_the_rest_is_stored(
    client, session, clock: Clock
):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    at = {
        "evt-w-00001": "0001-01-01T00:00:00Z",  # once an OverflowError that failed the whole batch
        "evt-w-00002": "0001-01-01T00:00:00+14:00",
        "evt-w-00003": (clock() - timedelta(days=15)).isoformat(),  # older than the 14 days kept
        "evt-w-00004": "9999-12-31T23:59:59-12:00",
        "evt-w-00006": (clock() + timedelta(hours=2)).isoformat(),  # the gateway's clock runs ahead
    }
    events = [event(key, phone, clock()) | {"observed_at": when} for key, when in at.items()]
    # A gateway's outbox after an outage: 13 days old, still kept (the EID is the one resolvable now).
    late = (clock() - timedelta(days=13)).isoformat()
    events.append(event("evt-w-00005", phone, clock()) | {"observed_at": late})

    answer = client.post("/gateway/v1/events", json={"events": events}, headers=gateway)

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["accepted"] == ["evt-w-00005"]
    rejected = {r["id"]: r["errors"] for r in body["rejected"]}
    assert set(rejected) == set(at)
    assert all(errors[0]["field"].endswith(".observed_at") for errors in rejected.values())
    assert "retention" in rejected["evt-w-00003"][0]["message"]
    assert "future" in rejected["evt-w-00006"][0]["message"]
    session.expire_all()
    assert session.scalars(select(ProximityEvent.idempotency_key)).all() == ["evt-w-00005"]


def test_oversized_bodies_are_refused_before_parsing(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    answer = client.post(
        "/gateway/v1/events",
        content=b"{" + b" " * 1_100_000 + b"}",
        headers=gateway | {"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"


def test_a_gateways_last_seen_moves_with_its_batches_at_half_minute_resolution(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)

    def post(key: str) -> object:
        client.post("/gateway/v1/events", json={"events": [event(key, phone, clock())]}, headers=gateway)
        session.expire_all()
        return session.scalars(select(Gateway.last_seen_at)).one()

    first = post("evt-seen-0001")
    assert first == clock()
    clock.advance(10)
    assert post("evt-seen-0002") == first, "within 30 s the row is not written again"
    clock.advance(25)
    assert post("evt-seen-0003") == clock()


def test_a_campaigns_daily_budget_counts_its_own_prompts_of_the_day(client, session, clock: Clock):
    """The live path counts, per batch, the prompts each campaign with a budget at the batch's sites gave
    today: another campaign's prompts (here, one at another site) do not use it up."""
    first = make_charity(session, clock(), slug="hospiz")
    other = make_charity(session, clock(), slug="tafel")
    for campaign_id in (first.campaign_id, other.campaign_id):
        session.get_one(Campaign, campaign_id).daily_budget = 1
    session.commit()
    gateways = {
        first.site_id: enrol(client, first.enrolment_code),
        other.site_id: enrol(client, other.enrolment_code),
    }

    def walk_past(site_id: int, key: str) -> None:
        phone = opt_in(client)
        batch = {
            "events": [event(f"{key}-a", phone, clock()), event(f"{key}-b", phone, clock(), "dwell", 20)]
        }
        answer = client.post("/gateway/v1/events", json=batch, headers=gateways[site_id])
        assert answer.status_code == 200, answer.text

    walk_past(first.site_id, "evt-0001")
    walk_past(other.site_id, "evt-0002")
    walk_past(first.site_id, "evt-0003")

    session.expire_all()
    decided = session.execute(
        select(PromptDecision.site_id, PromptDecision.reason)
        .where(PromptDecision.reason != "dwell_too_short")  # each walk's enter event, before its dwell
        .order_by(PromptDecision.id)
    ).all()
    assert [tuple(row) for row in decided] == [
        (first.site_id, "prompted"),
        (other.site_id, "prompted"),
        (first.site_id, "budget_exhausted"),
    ]
