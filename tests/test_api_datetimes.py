"""Points in time sent to the API, on SQLite and PostgreSQL: ISO 8601 with an offset only, years 1970 to 2999.

Dates at the calendar's edges (year 1, year 9999 with an offset) once overflowed Python's datetime and
answered 500, failing a whole gateway batch; numbers were taken as Unix time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.core.datetimes import ApiDatetime
from server.presence.models import ProximityEvent
from tests.admin_world import API, make_world
from tests.conftest import Clock
from tests.test_sightings import sighting, with_region
from tests.world import enrol, event, make_charity, opt_in

EDGES = ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
NOT_ISO = ["0.5", "1700000000", "2026-11-25", "2026-11-25T12:00:00", "yesterday"]


def errors_of(answer, status: int = 422) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


def test_the_type_takes_iso_8601_with_an_offset_within_the_years():
    adapter = TypeAdapter(ApiDatetime)
    assert adapter.validate_python("2026-11-25T12:00:00+01:00") == datetime(2026, 11, 25, 11, tzinfo=UTC)
    assert adapter.validate_python("1970-01-01T00:00:00+14:00").year == 1970
    assert adapter.validate_python("2999-12-31T23:59:59.5-12:00").year == 2999
    for bad in [*EDGES, *NOT_ISO, 0.5, 1_700_000_000, None]:
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_one_event_at_the_calendars_edge_is_rejected_alone_and_the_others_are_stored(
    client, session: Session, clock: Clock
):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    good = event("evt-good-01", phone, clock())
    edges = [dict(event(f"evt-edge-{i:02}", phone, clock()), observed_at=at) for i, at in enumerate(EDGES)]
    numeric = dict(event("evt-number", phone, clock()), observed_at=1_700_000_000)

    answer = client.post("/gateway/v1/events", json={"events": [*edges, good, numeric]}, headers=gateway)

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["accepted"] == ["evt-good-01"]
    assert [(r["index"], r["id"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (0, "evt-edge-00", ["events[0].observed_at"]),
        (1, "evt-edge-01", ["events[1].observed_at"]),
        (2, "evt-edge-02", ["events[2].observed_at"]),
        (4, "evt-number", ["events[4].observed_at"]),
    ]
    assert "1970 and 2999" in body["rejected"][0]["errors"][0]["message"]
    assert "ISO 8601" in body["rejected"][3]["errors"][0]["message"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ProximityEvent)) == 1


@pytest.mark.parametrize("observed_at", [*EDGES, "0.5", 1_700_000_000])
def test_a_phone_sighting_at_the_calendars_edge_is_refused_naming_the_field(
    client, session: Session, clock: Clock, observed_at
):
    with_region(session, make_charity(session, clock()))
    phone = opt_in(client)

    answer = client.post(
        "/mobile/v1/sightings",
        json=sighting("ios-edge-1", clock(), observed_at=observed_at),
        headers=phone.headers,
    )

    assert list(errors_of(answer)) == ["observed_at"]


def test_admin_time_filters_and_campaign_dates_take_only_sane_iso_8601(
    client, session: Session, clock: Clock
):
    world = make_world(session, clock())
    operator = world.headers["operator"]
    for value in [*EDGES, *NOT_ISO]:
        for path, name in [("/decisions", "since"), ("/decisions", "until"), ("/audit", "since")]:
            answer = client.get(f"{API}{path}", params={name: value}, headers=operator)
            assert list(errors_of(answer)) == [f"query.{name}"], (path, name, value)
        campaign = {
            "organisation_id": world.ids["a"]["org_id"],
            "name": "Edges",
            "kind": "volunteer",
            "starts_at": value,
            "ends_at": value,
        }
        answer = client.post(f"{API}/campaigns", json=campaign, headers=operator)
        assert sorted(errors_of(answer)) == ["ends_at", "starts_at"], value
        proposal = {"campaigns": {str(world.ids["a"]["campaign_id"]): {"starts_at": value}}}
        answer = client.post(
            f"{API}/organisations/{world.ids['a']['org_id']}/simulate", json=proposal, headers=operator
        )
        assert list(errors_of(answer)) == [f"campaigns.{world.ids['a']['campaign_id']}.starts_at"], value

    # The edges of the range itself work, with any offset.
    answer = client.get(
        f"{API}/decisions",
        params={"since": "1970-01-01T00:00:00+14:00", "until": "2999-12-31T23:59:59-12:00"},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] >= 1
