"""Hypothesis through the live path: generated walks past three charities, posted by their gateways over HTTP,
never give a person more prompts than the strictest cap in any window, nor one in quiet hours."""

from __future__ import annotations

import itertools
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server.campaigns.models import Campaign
from server.core import const
from server.prompts.models import PromptDecision
from server.subscribers.models import Subscriber
from server.tenancy.models import PlatformSettings
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

BERLIN = ZoneInfo("Europe/Berlin")

walk_st = st.lists(
    st.tuples(st.integers(0, 2), st.integers(60, 40 * 3600), st.sampled_from([0, 10, 20, 60, 1500])),
    min_size=1,
    max_size=14,
)


def test_generated_walks_never_break_a_cap_or_quiet_hours(client, session, clock: Clock):
    charities = [make_charity(session, clock(), slug=f"org{i}") for i in range(3)]
    gateways = [enrol(client, c.enrolment_code) for c in charities]
    organisation_of = {c.campaign_id: c.organisation_id for c in charities}
    keys = itertools.count()
    given_in_all: list[int] = []

    @settings(max_examples=15, deadline=None, database=None, derandomize=True)  # reproducible in CI
    @given(
        walks=walk_st,
        caps=st.tuples(st.integers(1, 2), st.integers(0, 3), st.integers(1, 4)),
        own=st.none() | st.just(1),
    )
    def run(walks, caps, own):
        limits = session.scalars(select(PlatformSettings)).one()
        limits.max_prompts_per_day, limits.max_prompts_per_week, limits.max_prompts_per_month = caps
        session.commit()
        phone = opt_in(client)
        own = own if own is not None and caps[1] >= own else None  # a person may only be stricter
        if own is not None:
            answer = client.patch(
                "/mobile/v1/me/preferences", json={"caps": {"per_week": own}}, headers=phone.headers
            )
            assert answer.status_code == 200, answer.text
        for site, gap, dwell in walks:
            clock.advance(gap)
            batch = [event(f"evt-h-{next(keys):06d}", phone, clock())]
            if dwell:
                batch.append(event(f"evt-h-{next(keys):06d}", phone, clock(), "dwell", dwell))
            answer = client.post("/gateway/v1/events", json={"events": batch}, headers=gateways[site])
            assert answer.status_code == 200, answer.text
        session.expire_all()
        subscriber = session.scalars(select(Subscriber).order_by(Subscriber.created_at.desc())).first()
        assert subscriber is not None
        prompts = session.scalars(
            select(PromptDecision)
            .where(PromptDecision.subscriber_id == subscriber.id, PromptDecision.outcome == "prompted")
            .order_by(PromptDecision.decided_at)
        ).all()
        week_cap = min(c for c in (caps[1], own) if c is not None)
        for i, p in enumerate(prompts):
            local = p.decided_at.astimezone(BERLIN)
            assert 8 <= local.hour < 21, local
            upto = prompts[: i + 1]
            assert sum(1 for q in upto if q.local_day == p.local_day) <= caps[0]
            assert sum(1 for q in upto if q.decided_at > p.decided_at - timedelta(days=7)) <= week_cap
            assert sum(1 for q in upto if q.decided_at > p.decided_at - timedelta(days=30)) <= caps[2]
            same_org = [
                q for q in prompts[:i] if organisation_of[q.campaign_id] == organisation_of[p.campaign_id]
            ]
            cooldown = timedelta(days=const.DEFAULT_ORG_COOLDOWN_DAYS)
            assert all(q.decided_at <= p.decided_at - cooldown for q in same_org)
        assert all(session.get(Campaign, p.campaign_id) is not None for p in prompts)
        given_in_all.append(len(prompts))

    run()
    assert sum(given_in_all) > 0, "the generated walks prompted nobody: the property was never exercised"
