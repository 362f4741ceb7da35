"""Hypothesis: whatever the sightings and settings, no person gets more prompts than the strictest cap in any
window, none in quiet hours (the operator's, the site's, or outside the campaign's daily hours), none from one
charity within its cooldown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from server.policy.decide import (
    CampaignOption,
    History,
    OwnCaps,
    PastPrompt,
    Person,
    Policy,
    Situation,
    VariantOption,
    decide,
    in_daily_window,
    in_quiet_hours,
)

START = datetime(2026, 3, 20, 0, 0, tzinfo=UTC)  # the spring DST change falls inside the generated span
ZONE = "Europe/Berlin"

campaigns_st = st.lists(
    st.builds(
        lambda cid, org, prio, per_week, cooldown, hours: CampaignOption(
            cid,
            org,
            "volunteer",
            prio,
            "active",
            None,
            None,
            *(hours or (None, None)),
            (VariantOption(cid * 10, "de", "A"),),
            org_prompts_per_week=per_week,
            org_cooldown_days=cooldown,
        ),
        st.integers(1, 6),
        st.integers(1, 3),
        st.integers(0, 2),
        st.none() | st.integers(0, 2),
        st.none() | st.integers(14, 40),
        st.none() | st.sampled_from([("10:00", "18:00"), ("18:00", "10:00")]),  # daily hours
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda c: c.id,
)
policy_st = st.builds(
    Policy,
    max_per_day=st.integers(0, 3),
    max_per_week=st.integers(0, 5),
    max_per_month=st.integers(0, 8),
    org_cooldown_days=st.integers(0, 20),
    quiet_start=st.sampled_from(["21:00", "23:30", "00:00"]),
    quiet_end=st.sampled_from(["08:00", "06:00", "00:30"]),
)
own_st = st.builds(
    OwnCaps, st.none() | st.integers(0, 2), st.none() | st.integers(0, 3), st.none() | st.integers(0, 5)
)
site_quiet_st = st.none() | st.sampled_from([("12:00", "14:00"), ("19:00", "09:00"), ("01:30", "02:30")])
gaps_st = st.lists(st.integers(60, 3 * 24 * 3600), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(
    campaigns=campaigns_st,
    policy=policy_st,
    own=own_st,
    site_quiet=site_quiet_st,
    gaps=gaps_st,
    dismissals=st.booleans(),
)
def test_no_sequence_of_sightings_breaks_a_cap_or_quiet_hours(
    campaigns, policy, own, site_quiet, gaps, dismissals
):
    person = Person(uuid.UUID(int=1), frozenset({"volunteer"}), "de", caps=own)
    zone = ZoneInfo(ZONE)
    shown: list[PastPrompt] = []
    dismissed: dict[int, datetime] = {}
    now = START
    for gap in gaps:
        now += timedelta(seconds=gap)
        situation = Situation(now, 1, ZONE, "de", dwell_s=30.0, policy=policy, site_quiet_hours=site_quiet)
        decision = decide(person, History(tuple(shown), dismissed), campaigns, situation)
        if decision.prompted:
            assert decision.local_day is not None
            assert decision.campaign_id is not None
            org = next(c.organisation_id for c in campaigns if c.id == decision.campaign_id)
            shown.append(PastPrompt(now, decision.local_day, org, decision.campaign_id))
            if dismissals:
                dismissed[decision.campaign_id] = now + timedelta(minutes=1)
    by_id = {c.id: c for c in campaigns}
    for i, p in enumerate(shown):
        local = p.at.astimezone(zone)
        # Quiet hours are the union of the operator's, the site's and the hours outside the campaign's own.
        assert not in_daily_window(local.time(), policy.quiet_start, policy.quiet_end)
        assert not in_quiet_hours(local.time(), site_quiet)
        chosen = by_id[p.campaign_id]
        assert in_daily_window(local.time(), chosen.daily_from, chosen.daily_until)
        upto = shown[: i + 1]
        day_cap = min(x for x in (policy.max_per_day, own.per_day) if x is not None)
        month_cap = min(x for x in (policy.max_per_month, own.per_month) if x is not None)
        week_caps = [policy.max_per_week, own.per_week, by_id[p.campaign_id].org_prompts_per_week]
        assert sum(1 for q in upto if q.local_day == p.local_day) <= day_cap
        assert sum(1 for q in upto if q.at > p.at - timedelta(days=7)) <= min(
            c for c in week_caps if c is not None
        )
        assert sum(1 for q in upto if q.at > p.at - timedelta(days=30)) <= month_cap
        cooldown = max(policy.org_cooldown_days, by_id[p.campaign_id].org_cooldown_days or 0)
        earlier = [q for q in shown[:i] if q.organisation_id == p.organisation_id]
        assert all(q.at <= p.at - timedelta(days=cooldown) for q in earlier)
        same = [q for q in shown[:i] if q.campaign_id == p.campaign_id]
        assert not same or dismissals, "a campaign is shown once unless dismissed"
