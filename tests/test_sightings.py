"""The iOS path over HTTP, on SQLite and PostgreSQL: a phone reports its own iBeacon sighting, the same
decision runs, and the prompt comes back in the answer as well as in the inbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.presence.models import ProximityEvent, Visit
from server.prompts.models import PromptDecision
from server.sites.models import Site
from tests.conftest import Clock
from tests.world import Charity, enrol, event, make_charity, opt_in

REGION_UUID = "F7826DA6-4FA2-4E98-8024-BC5B71E0893E"
MAJOR = 4711


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def with_region(session: Session, charity: Charity, uuid: str = REGION_UUID, major: int = MAJOR) -> Charity:
    site = session.get_one(Site, charity.site_id)
    site.ibeacon_uuid, site.ibeacon_major = uuid, major
    session.commit()
    return charity


def sighting(key: str, when: datetime, kind: str = "dwell", dwell: float = 20, **extra) -> dict[str, object]:
    body = {
        "id": key,
        "kind": kind,
        "uuid": REGION_UUID.lower(),
        "major": MAJOR,
        "minor": 1,
        "observed_at": when.isoformat(),
        "rssi": -70.0,
        "dwell_s": dwell,
    }
    return body | extra


def assert_problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["detail"]
    return problem


def test_an_ios_sighting_is_decided_and_the_prompt_comes_back_and_is_in_the_inbox(
    client, session, clock: Clock
):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client, ["volunteer"], language="en")

    answer = client.post("/mobile/v1/sightings", json=sighting("ios-0001", clock()), headers=phone.headers)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["stored"], body["duplicate"], body["reason"]) == (True, False, "prompted")
    inbox = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]
    assert body["prompt"] == inbox[0]
    assert (inbox[0]["title"], inbox[0]["language"], inbox[0]["site"]) == ("Help?", "en", "hospiz door")
    session.expire_all()
    stored = session.scalars(select(ProximityEvent)).one()
    assert (stored.source, stored.gateway_id, stored.kind, stored.idempotency_key) == (
        "phone",
        None,
        "dwell",
        "ios-0001",
    )
    decision = session.scalars(select(PromptDecision)).one()
    assert decision.event_id == stored.id
    assert decision.visit_id == stored.visit_id


def test_the_same_id_twice_is_stored_once_and_answers_the_same_decision(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone, other = opt_in(client), opt_in(client)
    first = client.post("/mobile/v1/sightings", json=sighting("ios-dup-1", clock()), headers=phone.headers)
    clock.advance(5)

    again = client.post("/mobile/v1/sightings", json=sighting("ios-dup-1", clock()), headers=phone.headers)

    assert again.status_code == 200
    assert again.json() == first.json() | {"stored": False, "duplicate": True}
    assert (count(session, ProximityEvent), count(session, PromptDecision), count(session, Visit)) == (
        1,
        1,
        1,
    )
    # Keys are the phone's own: another phone may use the same id.
    theirs = client.post("/mobile/v1/sightings", json=sighting("ios-dup-1", clock()), headers=other.headers)
    assert (theirs.json()["stored"], theirs.json()["duplicate"]) == (True, False)
    assert count(session, ProximityEvent) == 2


def test_a_duplicate_without_a_decision_says_so(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    leave = sighting("ios-exit-1", clock(), kind="exit")
    first = client.post("/mobile/v1/sightings", json=leave, headers=phone.headers)
    assert first.json() == {"stored": True, "duplicate": False, "prompt": None, "reason": "exit"}
    again = client.post("/mobile/v1/sightings", json=leave, headers=phone.headers)
    assert again.json() == {"stored": False, "duplicate": True, "prompt": None, "reason": "duplicate"}


def test_an_unknown_region_is_a_404_problem_naming_the_region(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    stranger = sighting("ios-0404", clock(), major=MAJOR + 1)

    answer = client.post("/mobile/v1/sightings", json=stranger, headers=phone.headers)

    problem = assert_problem(answer, 404, "not_found")
    assert f"major={MAJOR + 1}" in problem["detail"]
    assert REGION_UUID.lower() in problem["detail"]
    assert count(session, ProximityEvent) == 0
    assert count(session, Visit) == 0


def test_region_uuids_match_regardless_of_case(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()), uuid=REGION_UUID.upper())
    phone = opt_in(client)
    answer = client.post("/mobile/v1/sightings", json=sighting("ios-case", clock()), headers=phone.headers)
    assert answer.json()["stored"] is True


def test_a_gateway_and_the_own_phone_at_one_site_within_the_gap_are_one_visit(client, session, clock: Clock):
    charity = with_region(session, make_charity(session, clock()))
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)

    seen = client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-g-0001", phone, clock(), "dwell", 20)]},
        headers=gateway,
    )
    assert seen.json()["prompts"] == 1
    later = clock.advance(60)  # within the 120 s visit gap
    answer = client.post("/mobile/v1/sightings", json=sighting("ios-g-0001", later), headers=phone.headers)

    assert answer.json() == {
        "stored": True,
        "duplicate": False,
        "prompt": None,
        "reason": "visit_already_decided",
    }
    assert count(session, Visit) == 1
    assert count(session, PromptDecision) == 1
    sources = session.scalars(select(ProximityEvent.source).order_by(ProximityEvent.id)).all()
    assert sources == ["gateway", "phone"]
    visit = session.scalars(select(Visit)).one()
    assert visit.dwell_s == 60
    assert set(session.scalars(select(ProximityEvent.visit_id))) == {visit.id}


def test_the_phone_first_then_a_gateway_is_one_visit_with_one_decision(client, session, clock: Clock):
    charity = with_region(session, make_charity(session, clock()))
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    answer = client.post("/mobile/v1/sightings", json=sighting("ios-p-0001", clock()), headers=phone.headers)
    assert answer.json()["reason"] == "prompted"

    later = clock.advance(30)
    seen = client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-p-0001", phone, later, "dwell", 30)]},
        headers=gateway,
    )

    assert seen.json()["prompts"] == 0
    assert (count(session, Visit), count(session, PromptDecision)) == (1, 1)


def test_sightings_after_the_visit_gap_are_a_new_visit(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    client.post("/mobile/v1/sightings", json=sighting("ios-v-0001", clock()), headers=phone.headers)
    clock.advance(timedelta(minutes=10).total_seconds())
    client.post("/mobile/v1/sightings", json=sighting("ios-v-0002", clock()), headers=phone.headers)
    assert count(session, Visit) == 2


def test_invalid_sightings_are_422_naming_the_field(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    cases = {
        "major": sighting("ios-bad-01", clock(), major=70_000),
        "uuid": sighting("ios-bad-02", clock(), uuid="not-a-uuid"),
        "kind": sighting("ios-bad-03", clock(), kind="loiter"),
        "observed_at": sighting("ios-bad-04", clock(), observed_at="2026-11-25T11:00:00"),  # no offset
        "mac": sighting("ios-bad-05", clock(), mac="aa:bb:cc:dd:ee:ff"),  # extra fields are refused
        "id": sighting("short", clock()),
    }
    for field, body in cases.items():
        problem = assert_problem(
            client.post("/mobile/v1/sightings", json=body, headers=phone.headers), 422, "validation_failed"
        )
        assert [e["field"] for e in problem["errors"]] == [field], problem
        assert field in problem["detail"]
    future = sighting("ios-bad-06", clock() + timedelta(hours=1))
    problem = assert_problem(
        client.post("/mobile/v1/sightings", json=future, headers=phone.headers), 422, "validation_failed"
    )
    assert [e["field"] for e in problem["errors"]] == ["observed_at"]
    assert "clock" in problem["detail"]
    for key, when, why in (
        ("ios-bad-07", "0001-01-01T00:00:00+14:00", "1970"),  # once an OverflowError, a 500
        ("ios-bad-08", "2026-11-01T00:00:00Z", "retention"),  # 24 days old: would be purged unread
    ):
        old = sighting(key, clock()) | {"observed_at": when}
        problem = assert_problem(
            client.post("/mobile/v1/sightings", json=old, headers=phone.headers), 422, "validation_failed"
        )
        assert [e["field"] for e in problem["errors"]] == ["observed_at"]
        assert why in problem["detail"]
    assert count(session, ProximityEvent) == 0


def test_sightings_need_a_valid_device_token(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    for headers in ({}, {"Authorization": "Bearer ndv_guess"}):
        answer = client.post("/mobile/v1/sightings", json=sighting("ios-auth-1", clock()), headers=headers)
        assert_problem(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert count(session, ProximityEvent) == 0


def test_sighting_bodies_are_capped_per_route(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    padded = sighting("ios-big-01", clock()) | {"id": "x" * 5_000}
    answer = client.post("/mobile/v1/sightings", json=padded, headers=phone.headers)
    problem = assert_problem(answer, 413, "payload_too_large")
    assert "4096 bytes" in problem["detail"]

    def chunks():  # no Content-Length: the cap counts what arrives
        yield b'{"id": "'
        for _ in range(10):
            yield b"y" * 1_000
        yield b'"}'

    chunked = client.post(
        "/mobile/v1/sightings", content=chunks(), headers=phone.headers | {"content-type": "application/json"}
    )
    assert_problem(chunked, 413, "payload_too_large")
    assert count(session, ProximityEvent) == 0


def test_a_sighting_reported_long_after_it_happened_is_stored_but_not_decided(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    hour_ago = clock() - timedelta(hours=1)  # an offline phone catching up: the person has moved on

    answer = client.post(
        "/mobile/v1/sightings", json=sighting("ios-stale-1", hour_ago), headers=phone.headers
    )

    assert answer.json() == {"stored": True, "duplicate": False, "prompt": None, "reason": "stale"}
    assert (count(session, ProximityEvent), count(session, PromptDecision)) == (1, 0)
    fresh = client.post("/mobile/v1/sightings", json=sighting("ios-fresh-1", clock()), headers=phone.headers)
    assert fresh.json()["reason"] == "prompted"


def test_a_late_report_from_before_a_visit_does_not_join_it(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)
    client.post("/mobile/v1/sightings", json=sighting("ios-o-0001", clock()), headers=phone.headers)
    earlier = clock() - timedelta(minutes=5)  # an earlier walk past, reported after the later one

    client.post("/mobile/v1/sightings", json=sighting("ios-o-0002", earlier, dwell=0), headers=phone.headers)

    assert count(session, Visit) == 2
    starts = sorted(session.scalars(select(Visit.started_at)))
    assert starts == [earlier, clock()]
