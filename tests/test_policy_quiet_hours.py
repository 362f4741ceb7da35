"""Quiet hours are the union of the operator's window, the site's and the hours outside a campaign's daily
hours, read on the site's wall clock; explain names the window that held. The pure function table-driven,
then the admin API, the gateway path and the iOS path on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.policy.decide import (
    CampaignOption,
    Decision,
    History,
    Person,
    Policy,
    Reason,
    Situation,
    VariantOption,
    decide,
)
from server.prompts.models import PromptDecision
from tests.admin_world import API, add_user, signed_in
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

BERLIN = "Europe/Berlin"
DEFAULT = ("21:00", "08:00")  # the operator's default window
PROMPTED, OPERATOR, SITE = Reason.PROMPTED, Reason.QUIET_HOURS, Reason.SITE_QUIET_HOURS


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def campaign(cid: int = 1, *, hours: tuple[str, str] | None = None, priority: int = 0) -> CampaignOption:
    daily_from, daily_until = hours or (None, None)
    return CampaignOption(
        id=cid,
        organisation_id=cid,
        kind="volunteer",
        priority=priority,
        status="active",
        starts_at=None,
        ends_at=None,
        daily_from=daily_from,
        daily_until=daily_until,
        variants=(VariantOption(cid * 10, "de", "A"),),
    )


def decide_at(
    now: datetime,
    *,
    operator: tuple[str, str] = DEFAULT,
    site: tuple[str, str] | None = None,
    campaigns: list[CampaignOption] | None = None,
    zone: str | None = BERLIN,
) -> Decision:
    person = Person(uuid.UUID(int=7), frozenset({"volunteer"}), "de")
    policy = Policy(quiet_start=operator[0], quiet_end=operator[1])
    situation = Situation(now, 1, zone, "de", 30.0, policy, site_quiet_hours=site)
    return decide(person, History(), campaigns if campaigns is not None else [campaign()], situation)


# Summer in Berlin is UTC+2: 10:00 UTC is 12:00 there.
@pytest.mark.parametrize(
    ("operator", "site", "now", "reason"),
    [
        # The default: the site's window is the operator's.
        (DEFAULT, DEFAULT, utc(2026, 7, 1, 10), PROMPTED),
        (DEFAULT, DEFAULT, utc(2026, 7, 1, 19), OPERATOR),
        # Two disjoint windows: the operator's at night, the site's over lunch.
        (DEFAULT, ("12:00", "13:00"), utc(2026, 7, 1, 9, 59), PROMPTED),
        (DEFAULT, ("12:00", "13:00"), utc(2026, 7, 1, 10, 0), SITE),
        (DEFAULT, ("12:00", "13:00"), utc(2026, 7, 1, 10, 59), SITE),
        (DEFAULT, ("12:00", "13:00"), utc(2026, 7, 1, 11, 0), PROMPTED),
        (DEFAULT, ("12:00", "13:00"), utc(2026, 7, 1, 20, 0), OPERATOR),
        # The site's window crosses midnight and widens the operator's on both sides.
        (DEFAULT, ("19:00", "09:00"), utc(2026, 7, 1, 16, 59), PROMPTED),
        (DEFAULT, ("19:00", "09:00"), utc(2026, 7, 1, 17, 30), SITE),
        (DEFAULT, ("19:00", "09:00"), utc(2026, 7, 1, 19, 30), OPERATOR),  # both: the operator's is named
        (DEFAULT, ("19:00", "09:00"), utc(2026, 7, 2, 6, 30), SITE),
        (DEFAULT, ("19:00", "09:00"), utc(2026, 7, 2, 7, 0), PROMPTED),
        # Disjoint, the site's crossing midnight and the operator's not.
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 1, 19, 59), PROMPTED),
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 1, 20, 30), SITE),
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 1, 22, 30), SITE),
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 1, 23, 0), PROMPTED),
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 2, 1, 0), OPERATOR),
        (("02:00", "05:00"), ("22:00", "01:00"), utc(2026, 7, 2, 3, 0), PROMPTED),
        # A window of the site inside the operator's changes nothing (every minute: the test below).
        (DEFAULT, ("22:00", "07:00"), utc(2026, 7, 1, 19, 30), OPERATOR),
        (DEFAULT, ("22:00", "07:00"), utc(2026, 7, 1, 10, 0), PROMPTED),
    ],
)
def test_the_sites_window_widens_the_operators(operator, site, now, reason):
    decision = decide_at(now, operator=operator, site=site)
    assert decision.reason is reason
    assert decision.checks[-1].name == reason
    assert [c.name for c in decision.checks if not c.passed] == ([] if reason is PROMPTED else [reason])


def test_a_site_window_inside_the_operators_changes_no_decision_all_day():
    start = utc(2026, 7, 1, 0)
    for minute in range(0, 24 * 60, 7):
        now = start + timedelta(minutes=minute)
        alone, inside = decide_at(now), decide_at(now, site=("22:00", "07:00"))
        assert (alone.reason, alone.campaign_id) == (inside.reason, inside.campaign_id), now


# Europe/Berlin: on 2026-03-29 the clocks jump from 02:00 CET to 03:00 CEST, on 2026-10-25 from 03:00 CEST
# back to 02:00 CET. A window 01:30-02:30 is read on the wall clock: in spring only its first half comes;
# in autumn its 02:00-02:30 comes twice, and is quiet both times.
DST_NIGHTS = [
    (utc(2026, 3, 29, 0, 29), False),  # 01:29 CET
    (utc(2026, 3, 29, 0, 30), True),  # 01:30 CET
    (utc(2026, 3, 29, 0, 59), True),  # 01:59 CET
    (utc(2026, 3, 29, 1, 0), False),  # 03:00 CEST: 02:00-02:30 never happened
    (utc(2026, 3, 29, 1, 30), False),  # 03:30 CEST
    (utc(2026, 10, 24, 23, 29), False),  # 01:29 CEST
    (utc(2026, 10, 24, 23, 30), True),  # 01:30 CEST
    (utc(2026, 10, 25, 0, 29), True),  # 02:29 CEST
    (utc(2026, 10, 25, 0, 30), False),  # 02:30 CEST
    (utc(2026, 10, 25, 0, 59), False),  # 02:59 CEST
    (utc(2026, 10, 25, 1, 0), True),  # 02:00 CET, the hour again
    (utc(2026, 10, 25, 1, 29), True),  # 02:29 CET
    (utc(2026, 10, 25, 1, 30), False),  # 02:30 CET
]


@pytest.mark.parametrize(("now", "quiet"), DST_NIGHTS)
@pytest.mark.parametrize("whose", ["operator", "site"])
def test_a_window_on_the_dst_nights_is_read_on_the_wall_clock(now, quiet, whose):
    night = ("01:30", "02:30")
    if whose == "site":  # the operator's window elsewhere in the day, so that only the site's can hold
        decision = decide_at(now, operator=("12:00", "13:00"), site=night)
    else:
        decision = decide_at(now, operator=night)
    expected = (OPERATOR if whose == "operator" else SITE) if quiet else PROMPTED
    assert decision.reason is expected


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus"])
def test_without_a_time_zone_nothing_is_prompted_whatever_the_windows(zone):
    for hour in range(24):
        decision = decide_at(
            utc(2026, 7, 1, hour), operator=("03:00", "04:00"), site=("04:00", "05:00"), zone=zone
        )
        assert decision.reason is Reason.SITE_NO_TIMEZONE


def test_outside_its_daily_hours_a_campaign_is_quiet_and_cannot_narrow_the_sites_window():
    noon = utc(2026, 7, 1, 10)  # 12:00 local
    afternoon = campaign(1, hours=("14:00", "18:00"), priority=9)
    decision = decide_at(noon, campaigns=[afternoon])
    assert decision.reason is Reason.CAMPAIGN_QUIET_HOURS
    assert (
        decision.checks[-1].detail
        == "campaign 1: 12:00 in Europe/Berlin, outside its daily hours 14:00-18:00"
    )
    # Another campaign without daily hours is prompted instead, even with a lower priority.
    both = decide_at(noon, campaigns=[afternoon, campaign(2)])
    assert (both.reason, both.campaign_id) == (PROMPTED, 2)
    step = next(c for c in both.checks if c.name == Reason.CAMPAIGN_QUIET_HOURS)
    assert (step.passed, step.remaining) == (True, (2,))
    # Daily hours across midnight: evenings and mornings; the operator's night stays quiet inside them.
    evening_morning = [campaign(1, hours=("18:00", "10:00"))]
    assert decide_at(utc(2026, 7, 1, 6, 30), campaigns=evening_morning).reason is PROMPTED  # 08:30
    assert decide_at(utc(2026, 7, 1, 17), campaigns=evening_morning).reason is PROMPTED  # 19:00
    assert decide_at(utc(2026, 7, 1, 20), campaigns=evening_morning).reason is OPERATOR  # 22:00
    assert decide_at(utc(2026, 7, 1, 10), campaigns=evening_morning).reason is Reason.CAMPAIGN_QUIET_HOURS
    # A campaign's daily hours covering the site's window do not open it.
    lunch = decide_at(
        utc(2026, 7, 1, 10, 30), site=("12:00", "13:00"), campaigns=[campaign(1, hours=("11:00", "14:00"))]
    )
    assert lunch.reason is SITE


def test_explain_names_the_window_with_its_times_in_the_sites_zone():
    lunch = decide_at(utc(2026, 7, 1, 10, 30), site=("12:00", "13:00"))
    details = {c.name: c.detail for c in lunch.checks}
    assert (
        details[Reason.QUIET_HOURS]
        == "12:30 in Europe/Berlin, outside the operator's quiet hours 21:00-08:00"
    )
    assert (
        details[Reason.SITE_QUIET_HOURS]
        == "12:30 in Europe/Berlin, inside the site's quiet hours 12:00-13:00"
    )
    night = decide_at(utc(2026, 7, 1, 20, 5), site=("12:00", "13:00"))
    assert night.checks[-1].detail == "22:05 in Europe/Berlin, inside the operator's quiet hours 21:00-08:00"
    none = decide_at(utc(2026, 7, 1, 10, 30))
    assert {c.name: c.detail for c in none.checks}[Reason.SITE_QUIET_HOURS] == (
        "12:30 in Europe/Berlin; the site set no quiet hours"
    )


# --- Through the admin API and the live paths, on both databases ------------------------------------------


def test_a_sites_quiet_hours_hold_for_explain_the_gateway_and_the_phone(client, session, clock: Clock):
    charity = make_charity(session, clock())  # the clock: 12:00 in Berlin
    editor = add_user(session, "editor@hospiz.example", roles={charity.organisation_id: "editor"})
    session.commit()
    headers = signed_in(session, editor, clock())
    session.commit()
    site_url, explain_url = f"{API}/sites/{charity.site_id}", f"{API}/sites/{charity.site_id}/explain"
    assert client.get(explain_url, headers=headers).json()["prompted"] is True

    etag = client.get(site_url, headers=headers).headers["ETag"]
    region = {"ibeacon_uuid": "F7826DA6-4FA2-4E98-8024-BC5B71E0893E", "ibeacon_major": 4711}
    window = {"quiet_start": "11:30", "quiet_end": "12:30"}
    changed = client.patch(site_url, json=window | region, headers=headers | {"If-Match": etag})
    assert changed.status_code == 200, changed.text

    body = client.get(explain_url, headers=headers).json()
    assert (body["prompted"], body["reason"]) == (False, "site_quiet_hours")
    assert body["checks"][-1] == {
        "name": "site_quiet_hours",
        "passed": False,
        "detail": "12:00 in Europe/Berlin, inside the site's quiet hours 11:30-12:30",
        "remaining": [charity.campaign_id],
    }

    gateway, walker = enrol(client, charity.enrolment_code), opt_in(client)
    batch = {"events": [event("evt-quiet-0001", walker, clock(), "dwell", 20)]}
    answer = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert (answer.status_code, answer.json()["prompts"]) == (200, 0), answer.text
    iphone = opt_in(client)
    sighting = {
        "id": "ios-quiet-0001",
        "kind": "dwell",
        "uuid": region["ibeacon_uuid"].lower(),
        "major": 4711,
        "minor": 1,
        "observed_at": clock().isoformat(),
        "dwell_s": 20,
    }
    answer = client.post("/mobile/v1/sightings", json=sighting, headers=iphone.headers)
    assert (answer.status_code, answer.json()["reason"]) == (200, "site_quiet_hours"), answer.text
    session.expire_all()
    assert session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id)).all() == [
        "site_quiet_hours",
        "site_quiet_hours",
    ]

    # At the window's end the same site prompts again, on the same paths.
    clock.advance(30 * 60)
    assert client.get(explain_url, headers=headers).json()["prompted"] is True
    batch = {"events": [event("evt-quiet-0002", opt_in(client), clock(), "dwell", 20)]}
    assert client.post("/gateway/v1/events", json=batch, headers=gateway).json()["prompts"] == 1


def test_a_site_cannot_have_an_empty_quiet_window(client, session, clock: Clock):
    charity = make_charity(session, clock())
    editor = add_user(session, "editor@hospiz.example", roles={charity.organisation_id: "editor"})
    session.commit()
    headers = signed_in(session, editor, clock())
    session.commit()
    site_url = f"{API}/sites/{charity.site_id}"
    etag = client.get(site_url, headers=headers).headers["ETag"]
    answer = client.patch(site_url, json={"quiet_start": "08:00"}, headers=headers | {"If-Match": etag})
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == ("rule_violation", "quiet_end")
    made = client.post(
        f"{API}/sites",
        json={
            "organisation_id": charity.organisation_id,
            "name": "shop",
            "quiet_start": "00:00",
            "quiet_end": "00:00",
        },
        headers=headers,
    )
    assert made.status_code == 422, made.text
