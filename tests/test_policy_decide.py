"""The pure decision function, rule by rule and reason by reason, table-driven; time-zone edges included."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from server.policy.decide import (
    CampaignOption,
    History,
    OwnCaps,
    PastPrompt,
    Person,
    Policy,
    Reason,
    Situation,
    VariantOption,
    decide,
    in_daily_window,
    paced_allowance,
    pick_variant,
)

NOON_BERLIN = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST, a Wednesday
DAY = timedelta(days=1)


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


def person(**kw: object) -> Person:
    fields: dict[str, object] = {
        "subscriber_id": uuid.UUID(int=7),
        "scopes": frozenset({"volunteer", "donation"}),
        "language": "de",
    }
    return Person(**(fields | kw))  # type: ignore[arg-type]


def situation(now: datetime = NOON_BERLIN, zone: str | None = "Europe/Berlin", **kw: object) -> Situation:
    fields: dict[str, object] = {"site_id": 1, "site_language": "de", "dwell_s": 30.0}
    return Situation(now=now, site_timezone=zone, **(fields | kw))  # type: ignore[arg-type]


def prompt(ago: timedelta, org: int = 1, cid: int = 1, now: datetime = NOON_BERLIN) -> PastPrompt:
    at = now - ago
    return PastPrompt(at, at.date(), org, cid)


def history(*prompts: PastPrompt, **kw: object) -> History:
    return History(prompts=prompts, **kw)  # type: ignore[arg-type]


EMPTY = History()
CET_NIGHT = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET after the clocks went back: quiet
SPRING = datetime(2026, 3, 29, 6, 59, tzinfo=UTC)  # 08:59 CEST (07:59 had it been CET): not quiet
SPRING_EARLY = datetime(2026, 3, 29, 5, 59, tzinfo=UTC)  # 07:59 CEST: still quiet


@pytest.mark.parametrize(
    ("who", "past", "campaigns", "where", "reason"),
    [
        (person(), EMPTY, [campaign()], situation(), Reason.PROMPTED),
        (person(excluded_sites=frozenset({1})), EMPTY, [campaign()], situation(), Reason.NOT_HERE),
        (person(), EMPTY, [campaign()], situation(zone=None), Reason.SITE_NO_TIMEZONE),
        (person(), EMPTY, [campaign()], situation(zone="Mars/Olympus"), Reason.SITE_NO_TIMEZONE),
        # Quiet hours 21:00-08:00 in the site's zone, across midnight and on both DST nights.
        (
            person(),
            EMPTY,
            [campaign()],
            situation(datetime(2026, 7, 1, 19, 0, tzinfo=UTC)),
            Reason.QUIET_HOURS,
        ),
        (person(), EMPTY, [campaign()], situation(datetime(2026, 7, 1, 18, 59, tzinfo=UTC)), Reason.PROMPTED),
        (
            person(),
            EMPTY,
            [campaign()],
            situation(datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
            Reason.QUIET_HOURS,
        ),
        (person(), EMPTY, [campaign()], situation(datetime(2026, 7, 1, 6, 0, tzinfo=UTC)), Reason.PROMPTED),
        (person(), EMPTY, [campaign()], situation(CET_NIGHT), Reason.QUIET_HOURS),
        (person(), EMPTY, [campaign()], situation(SPRING), Reason.PROMPTED),
        (person(), EMPTY, [campaign()], situation(SPRING_EARLY), Reason.QUIET_HOURS),
        (
            person(),
            EMPTY,
            [campaign()],
            situation(zone="America/New_York"),
            Reason.QUIET_HOURS,
        ),  # 06:00 there
        (person(quiet_hours=("11:00", "13:00")), EMPTY, [campaign()], situation(), Reason.PERSON_QUIET_HOURS),
        (person(), EMPTY, [], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), EMPTY, [campaign(status="paused")], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), EMPTY, [campaign(variants=())], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), EMPTY, [campaign(starts_at=NOON_BERLIN + DAY)], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (person(), EMPTY, [campaign(ends_at=NOON_BERLIN)], situation(), Reason.NO_ACTIVE_CAMPAIGN),
        (
            person(),
            EMPTY,
            [campaign(daily_from="14:00", daily_until="18:00")],
            situation(),
            Reason.CAMPAIGN_QUIET_HOURS,
        ),
        (person(), EMPTY, [campaign(daily_from="10:00", daily_until="12:01")], situation(), Reason.PROMPTED),
        (
            person(excluded_organisations=frozenset({1})),
            EMPTY,
            [campaign()],
            situation(),
            Reason.NOT_THIS_ORG,
        ),
        (
            person(scopes=frozenset({"donation"})),
            EMPTY,
            [campaign()],
            situation(),
            Reason.SCOPE_NOT_CONSENTED,
        ),
        (person(), EMPTY, [campaign()], situation(dwell_s=14.9), Reason.DWELL_TOO_SHORT),
        (person(), EMPTY, [campaign()], situation(dwell_s=15), Reason.PROMPTED),
        (person(), EMPTY, [campaign(min_dwell_s=60)], situation(dwell_s=30), Reason.DWELL_TOO_SHORT),
        (person(), EMPTY, [campaign()], situation(dwell_s=20 * 60 + 1), Reason.DWELL_TOO_LONG),
        (person(), EMPTY, [campaign(max_dwell_s=25)], situation(dwell_s=30), Reason.DWELL_TOO_LONG),
        (
            person(),
            history(prompt(timedelta(hours=1), org=2, cid=9)),
            [campaign()],
            situation(),
            Reason.GLOBAL_DAILY_CAP,
        ),
        (
            person(),
            history(prompt(DAY, 2, 8), prompt(2 * DAY, 3, 9)),
            [campaign()],
            situation(),
            Reason.GLOBAL_WEEKLY_CAP,
        ),
        (
            person(),
            history(prompt(8 * DAY, 2, 8), prompt(9 * DAY, 3, 9)),
            [campaign()],
            situation(),
            Reason.PROMPTED,
        ),
        (
            person(),
            history(*(prompt(d * DAY, d, d + 10) for d in (8, 12, 16, 20))),
            [campaign()],
            situation(),
            Reason.GLOBAL_MONTHLY_CAP,
        ),
        (
            person(),
            history(*(prompt(d * DAY, d, d + 10) for d in (8, 12, 16, 31))),
            [campaign()],
            situation(),
            Reason.PROMPTED,
        ),
        (person(), history(prompt(13 * DAY, 1, 5)), [campaign()], situation(), Reason.ORG_COOLDOWN),
        (person(), history(prompt(15 * DAY, 1, 5)), [campaign()], situation(), Reason.PROMPTED),
        (
            person(),
            history(prompt(15 * DAY, 1, 5)),
            [campaign(org_cooldown_days=30)],
            situation(),
            Reason.ORG_COOLDOWN,
        ),
        (person(), history(prompt(40 * DAY)), [campaign()], situation(), Reason.CAMPAIGN_ONCE),
        (
            person(),
            history(prompt(400 * DAY), accepted=frozenset({1})),
            [campaign()],
            situation(),
            Reason.CAMPAIGN_ACCEPTED,
        ),
        (
            person(),
            history(prompt(100 * DAY), dismissed={1: NOON_BERLIN - 99 * DAY}),
            [campaign()],
            situation(),
            Reason.CAMPAIGN_DISMISSED,
        ),
        (
            person(),
            history(prompt(200 * DAY), dismissed={1: NOON_BERLIN - 181 * DAY}),
            [campaign()],
            situation(),
            Reason.PROMPTED,
        ),
        (
            person(),
            history(budget_used={1: 5}),
            [campaign(daily_budget=5)],
            situation(),
            Reason.BUDGET_EXHAUSTED,
        ),
        (
            person(),
            history(budget_used={1: 4}),
            [campaign(daily_budget=10)],
            situation(),
            Reason.BUDGET_EXHAUSTED,
        ),  # paced: 4 h of 13 h allow 4
        (person(), history(budget_used={1: 3}), [campaign(daily_budget=10)], situation(), Reason.PROMPTED),
        # The person's own caps and the charity's weekly cap are stricter than the platform's.
        (
            person(caps=OwnCaps(per_week=1)),
            history(prompt(3 * DAY, 2, 9)),
            [campaign()],
            situation(),
            Reason.GLOBAL_WEEKLY_CAP,
        ),
        (person(caps=OwnCaps(per_day=0)), EMPTY, [campaign()], situation(), Reason.GLOBAL_DAILY_CAP),
        (
            person(caps=OwnCaps(per_month=1)),
            history(prompt(20 * DAY, 2, 9)),
            [campaign()],
            situation(),
            Reason.GLOBAL_MONTHLY_CAP,
        ),
        (
            person(),
            history(prompt(3 * DAY, 2, 9)),
            [campaign(org_prompts_per_week=1)],
            situation(),
            Reason.GLOBAL_WEEKLY_CAP,
        ),
    ],
)
def test_reasons(who, past, campaigns, where, reason):
    decision = decide(who, past, campaigns, where)
    assert decision.reason is reason
    assert decision.checks[-1].name == reason, "the chain ends with the check that decided"
    assert all(c.passed for c in decision.checks[:-1])


def test_the_platform_maxima_are_operator_settings():
    strict = situation(policy=Policy(max_per_day=0))
    assert decide(person(), EMPTY, [campaign()], strict).reason is Reason.GLOBAL_DAILY_CAP
    loose = situation(policy=Policy(max_per_week=5, org_cooldown_days=0))
    past = history(prompt(DAY, 2, 8), prompt(2 * DAY, 3, 9))
    assert decide(person(), past, [campaign()], loose).reason is Reason.PROMPTED


def test_the_daily_cap_counts_the_sites_calendar_day_not_utc():
    # 22:30 UTC on 30 June is already 1 July in Berlin: a prompt at 20:00 local on 30 June is "yesterday".
    just_after_midnight = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)
    assert decide(person(), EMPTY, [campaign()], situation(just_after_midnight)).local_day == date(2026, 7, 1)
    evening = PastPrompt(datetime(2026, 6, 30, 18, 0, tzinfo=UTC), date(2026, 6, 30), 2, 9)
    morning = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)  # 08:30 local on the next day
    assert decide(person(), history(evening), [campaign()], situation(morning)).reason is Reason.PROMPTED
    same_day = PastPrompt(datetime(2026, 7, 1, 6, 0, tzinfo=UTC), date(2026, 7, 1), 2, 9)
    assert (
        decide(person(), history(same_day), [campaign()], situation(morning)).reason
        is Reason.GLOBAL_DAILY_CAP
    )


def test_priority_first_then_the_campaign_seen_least_recently():
    two = [campaign(1, priority=1, organisation_id=1), campaign(2, priority=5, organisation_id=2)]
    assert decide(person(), EMPTY, two, situation()).campaign_id == 2
    equal = [campaign(1, organisation_id=1), campaign(2, organisation_id=2), campaign(3, organisation_id=3)]
    seen = history(
        prompt(300 * DAY, 2, 2),
        prompt(200 * DAY, 1, 1),
        dismissed={1: NOON_BERLIN - 190 * DAY, 2: NOON_BERLIN - 290 * DAY},
    )
    chosen = decide(person(), seen, equal[:2], situation()).campaign_id
    assert chosen == 2, "both seen and dismissed long ago; campaign 2 longer ago"
    assert decide(person(), seen, equal, situation()).campaign_id == 3, "never seen comes first"


def test_an_excluded_charity_never_wins_even_with_the_highest_priority():
    options = [campaign(1, priority=9, organisation_id=1), campaign(2, priority=0, organisation_id=2)]
    decision = decide(person(excluded_organisations=frozenset({1})), EMPTY, options, situation())
    assert (decision.reason, decision.campaign_id) == (Reason.PROMPTED, 2)


def test_language_falls_back_to_the_site_then_any():
    only_en = campaign(variants=(VariantOption(5, "en", "A"),))
    assert decide(person(language="fr"), EMPTY, [campaign()], situation()).language == "de"
    assert decide(person(language="fr"), EMPTY, [only_en], situation()).language == "en"
    assert decide(person(language="en"), EMPTY, [campaign()], situation()).language == "en"


def test_ab_arms_are_stable_per_person_and_spread_across_people():
    ab = campaign(variants=(VariantOption(1, "de", "A"), VariantOption(2, "de", "B")))
    people = [person(subscriber_id=uuid.UUID(int=n)) for n in range(200)]
    first = [pick_variant(ab, p, "de").id for p in people]
    assert first == [pick_variant(ab, p, "de").id for p in people]
    assert 60 < first.count(1) < 140


def test_pacing_spreads_the_budget_over_the_campaigns_hours():
    c = campaign(daily_budget=8, daily_from="10:00", daily_until="18:00")
    assert [paced_allowance(c, time(h), Policy()) for h in (10, 12, 14, 17)] == [1, 3, 5, 8]
    assert paced_allowance(campaign(), time(12), Policy()) is None


def test_the_chain_explains_what_each_check_removed():
    options = [campaign(1, organisation_id=1), campaign(2, organisation_id=2, kind="donation")]
    decision = decide(
        person(scopes=frozenset({"donation"})), history(prompt(20 * DAY, 2, 2)), options, situation()
    )
    assert decision.reason is Reason.CAMPAIGN_ONCE
    names = [c.name for c in decision.checks]
    quiet = ["quiet_hours", "site_quiet_hours", "person_quiet_hours"]
    assert names[:5] == ["not_here", "site_no_timezone", *quiet]
    scope = next(c for c in decision.checks if c.name == "scope_not_consented")
    assert scope.remaining == (2,)
    assert "campaign 1: no volunteer consent" in scope.detail


def test_daily_windows_may_wrap_midnight():
    assert in_daily_window(time(23, 0), "22:00", "06:00")
    assert in_daily_window(time(5, 59), "22:00", "06:00")
    assert not in_daily_window(time(6, 0), "22:00", "06:00")
    assert in_daily_window(time(3, 0), None, None)


def test_decide_is_pure():
    args = (person(), history(prompt(20 * DAY, 2, 9)), [campaign()], situation())
    assert decide(*args) == decide(*args)
    assert replace(args[3], dwell_s=1) != args[3]
