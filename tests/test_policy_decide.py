"""The pure decision function's first rules, table-driven."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import pytest

from server.policy.decide import (
    CampaignOption,
    Person,
    Reason,
    Situation,
    VariantOption,
    decide,
    in_daily_window,
    pick_variant,
)

NOON_BERLIN = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST


def campaign(cid: int = 1, kind: str = "volunteer", priority: int = 0, **kw: object) -> CampaignOption:
    fields: dict[str, object] = {
        "id": cid,
        "organisation_id": 1,
        "kind": kind,
        "priority": priority,
        "status": "active",
        "starts_at": None,
        "ends_at": None,
        "daily_from": None,
        "daily_until": None,
        "variants": (VariantOption(cid * 10, "de", "A"), VariantOption(cid * 10 + 1, "en", "A")),
    }
    return CampaignOption(**(fields | kw))  # type: ignore[arg-type]


def person(
    scopes: tuple[str, ...] = ("volunteer", "donation"),
    today: int = 0,
    language: str = "de",
    not_sites: tuple[int, ...] = (),
    not_orgs: tuple[int, ...] = (),
    quiet: tuple[str, str] | None = None,
) -> Person:
    return Person(
        uuid.UUID(int=7), frozenset(scopes), language, today, frozenset(not_sites), frozenset(not_orgs), quiet
    )


def situation(now: datetime = NOON_BERLIN, zone: str | None = "Europe/Berlin") -> Situation:
    return Situation(now=now, site_id=1, site_timezone=zone, site_language="de", max_per_day=1)


@pytest.mark.parametrize(
    ("who", "campaigns", "where", "reason"),
    [
        (person(), [campaign()], situation(), Reason.PROMPTED),
        (person(), [campaign()], situation(zone=None), Reason.SITE_NO_TIMEZONE),
        (person(), [campaign()], situation(zone="Mars/Olympus"), Reason.SITE_NO_TIMEZONE),
        (person(), [], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), [campaign(status="paused")], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), [campaign(variants=())], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), [campaign(ends_at=NOON_BERLIN)], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (
            person(),
            [campaign(daily_from="13:00", daily_until="17:00")],
            situation(),
            Reason.NO_ACTIVE_CAMPAIGN,
        ),
        (person(), [campaign(daily_from="11:00", daily_until="13:00")], situation(), Reason.PROMPTED),
        (person(("donation",)), [campaign()], situation(), Reason.SCOPE_NOT_CONSENTED),
        (person(today=1), [campaign()], situation(), Reason.GLOBAL_DAILY_CAP),
        # "not here" is about the site (id 1 in `situation`), whatever runs there, and checked first
        (person(not_sites=(1,)), [campaign()], situation(), Reason.NOT_HERE),
        (person(not_sites=(1,)), [], situation(zone=None), Reason.NOT_HERE),
        (person(not_sites=(2,)), [campaign()], situation(), Reason.PROMPTED),
        # "not this charity" skips that charity's campaigns; only when nothing else runs is it the reason
        (person(not_orgs=(1,)), [campaign()], situation(), Reason.NOT_THIS_ORG),
        (
            person(not_orgs=(1,)),
            [campaign(1), campaign(2, organisation_id=1)],
            situation(),
            Reason.NOT_THIS_ORG,
        ),
        (person(not_orgs=(1,)), [campaign(1), campaign(2, organisation_id=2)], situation(), Reason.PROMPTED),
        (person(not_orgs=(2,)), [campaign()], situation(), Reason.PROMPTED),
        (person(not_orgs=(1,)), [campaign(status="paused")], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (
            person(("donation",), not_orgs=(2,)),
            [campaign(organisation_id=2)],
            situation(),
            Reason.NOT_THIS_ORG,
        ),
        # the person's own quiet hours, in the site's local time (noon in Berlin), may wrap midnight
        (person(quiet=("11:30", "13:00")), [campaign()], situation(), Reason.PERSON_QUIET_HOURS),
        (person(quiet=("10:00", "12:00")), [campaign()], situation(), Reason.PROMPTED),
        (person(quiet=("22:00", "12:30")), [campaign()], situation(), Reason.PERSON_QUIET_HOURS),
        (person(quiet=("12:00", "11:59")), [campaign()], situation(), Reason.PERSON_QUIET_HOURS),
        (person(quiet=("12:01", "12:00")), [campaign()], situation(), Reason.PROMPTED),
        (person(quiet=("11:30", "13:00")), [campaign()], situation(zone=None), Reason.SITE_NO_TIMEZONE),
        (
            person(("donation",), not_orgs=(1,)),
            [campaign(1), campaign(2, organisation_id=2)],
            situation(),
            Reason.SCOPE_NOT_CONSENTED,
        ),
    ],
)
def test_reasons(who, campaigns, where, reason):
    assert decide(who, campaigns, where).reason is reason


def test_an_excluded_charity_never_wins_even_with_the_highest_priority():
    mine, theirs = campaign(1, priority=1, organisation_id=1), campaign(2, priority=9, organisation_id=2)
    assert decide(person(not_orgs=(2,)), [mine, theirs], situation()).campaign_id == 1


def test_the_local_day_is_the_sites_calendar_day():
    late_evening_utc = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # already 2 July in Berlin
    assert decide(person(), [campaign()], situation(late_evening_utc)).local_day.isoformat() == "2026-07-02"


def test_highest_priority_wins_and_language_falls_back():
    chosen = decide(person(language="en"), [campaign(1, priority=1), campaign(2, priority=5)], situation())
    assert (chosen.campaign_id, chosen.variant_id, chosen.language) == (2, 21, "en")
    german_only = campaign(3, variants=(VariantOption(30, "de", "A"),))
    assert decide(person(language="en"), [german_only], situation()).language == "de"


def test_ab_arms_are_stable_per_person_and_spread_across_people():
    ab = campaign(variants=(VariantOption(1, "de", "A"), VariantOption(2, "de", "B")))
    arms = {pick_variant(ab, Person(uuid.UUID(int=n), frozenset(), "de", 0), "de").label for n in range(40)}
    assert arms == {"A", "B"}
    one = Person(uuid.uuid4(), frozenset(), "de", 0)
    assert len({pick_variant(ab, one, "de").id for _ in range(10)}) == 1


@pytest.mark.parametrize(
    ("at", "start", "end", "inside"),
    [
        (time(12), "08:00", "20:00", True),
        (time(20), "08:00", "20:00", False),
        (time(23), "21:00", "08:00", True),
        (time(7, 59), "21:00", "08:00", True),
        (time(8), "21:00", "08:00", False),
        (time(3), None, None, True),
    ],
)
def test_daily_windows_may_wrap_midnight(at, start, end, inside):
    assert in_daily_window(at, start, end) is inside
