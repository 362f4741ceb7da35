"""Walk-by campaigns: a minimum dwell of 0 is decided on `enter`, where the operator allows it; the operator's
minimum dwell is a floor for every other campaign; explain, the simulator and the gateway's marks agree."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign
from server.policy.decide import Policy, Reason, decide, dwell_marks
from server.policy.repository import recording
from server.policy.simulate import Proposal, compare
from server.prompts.models import PromptDecision
from server.tenancy.models import PlatformSettings
from tests.admin_world import add_user, signed_in
from tests.conftest import Clock
from tests.test_policy_decide import EMPTY, campaign, person, situation
from tests.world import enrol, event, make_charity, opt_in


@pytest.mark.parametrize(
    ("min_dwell", "dwell", "policy", "reason"),
    [
        (0, 0.0, Policy(), Reason.PROMPTED),  # decided on enter
        (None, 0.0, Policy(), Reason.DWELL_TOO_SHORT),  # the platform's 15 s
        (0, 0.0, Policy(allow_walk_by=False), Reason.WALK_BY_FORBIDDEN),
        (5, 6.0, Policy(), Reason.DWELL_TOO_SHORT),  # 5 s asked, the operator's floor of 15 s holds
        (5, 6.0, Policy(min_dwell_s=5), Reason.PROMPTED),
        (None, 10.0, Policy(min_dwell_s=10), Reason.PROMPTED),  # the floor is the default too
        (0, 1_300.0, Policy(), Reason.DWELL_TOO_LONG),  # walk-by still spares the staff
    ],
)
def test_walk_by_table(min_dwell, dwell, policy, reason):
    decision = decide(
        person(), EMPTY, [campaign(min_dwell_s=min_dwell)], situation(dwell_s=dwell, policy=policy)
    )
    assert decision.reason == reason


def test_explain_says_the_operator_turned_walk_by_off():
    decision = decide(
        person(), EMPTY, [campaign(min_dwell_s=0)], situation(dwell_s=0, policy=Policy(allow_walk_by=False))
    )
    step = decision.checks[-1]
    assert (step.name, step.passed) == ("walk_by_forbidden", False)
    assert "walk-by" in str(step.detail)


def test_a_walk_by_campaign_asks_for_no_dwell_mark_and_a_forbidden_one_for_none_at_all():
    assert dwell_marks(Policy(), [(0, None)]) == (1200.0,)  # enter decides; the staff limit stays
    assert dwell_marks(Policy(), [(0, None), (None, 600)]) == (15.0, 600.0, 1200.0)
    assert dwell_marks(Policy(allow_walk_by=False), [(0, None)]) == ()
    assert dwell_marks(Policy(min_dwell_s=20), [(5, None)]) == (20.0, 1200.0)


def _walk_by(session: Session, charity) -> None:
    session.get_one(Campaign, charity.campaign_id).min_dwell_s = 0
    session.commit()


def _reasons(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id)))


def test_a_walk_by_campaign_is_decided_on_the_enter_of_the_live_path(client, session, clock: Clock):
    charity = make_charity(session, clock())
    _walk_by(session, charity)
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)

    answer = client.post(
        "/gateway/v1/events", json={"events": [event("walkby-0001", phone, clock())]}, headers=gateway
    )

    assert answer.json()["prompts"] == 1
    assert _reasons(session) == ["prompted"]


def test_the_operator_may_forbid_walk_by_and_explain_and_the_live_path_say_so(client, session, clock: Clock):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    operator = signed_in(session, add_user(session, "op@nahbar.example", operator=True), clock())
    session.commit()
    settings = client.get("/admin/api/v1/platform/settings", headers=operator)
    changed = client.patch(
        "/admin/api/v1/platform/settings",
        json={"allow_walk_by": False},
        headers=operator | {"If-Match": settings.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allow_walk_by"] is False
    # Saving a walk-by campaign is refused now, with the field named ...
    refused = client.patch(
        f"/admin/api/v1/campaigns/{charity.campaign_id}",
        json={"min_dwell_s": 0},
        headers=operator
        | {
            "If-Match": client.get(
                f"/admin/api/v1/campaigns/{charity.campaign_id}", headers=operator
            ).headers["etag"]
        },
    )
    assert refused.status_code == 422, refused.text
    assert "walk-by" in refused.text.lower()
    # ... and one made before the operator turned it off does not run.
    _walk_by(session, charity)
    client.post(
        "/gateway/v1/events", json={"events": [event("walkby-0002", phone, clock())]}, headers=gateway
    )
    assert _reasons(session) == ["walk_by_forbidden"]

    explained = client.get(
        f"/admin/api/v1/sites/{charity.site_id}/explain", params={"dwell_s": 0}, headers=operator
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["reason"] == "walk_by_forbidden"


def test_the_simulator_replays_walk_by_with_the_operators_setting(client, session, clock: Clock):
    charity = make_charity(session, clock())
    _walk_by(session, charity)
    gateway = enrol(client, charity.enrolment_code)
    for n in range(3):
        phone = opt_in(client)
        client.post(
            "/gateway/v1/events",
            json={"events": [event(f"walkby-s{n:03d}", phone, clock())]},
            headers=gateway,
        )
        clock.advance(60)
    assert _reasons(session) == ["prompted"] * 3

    replayed = recording(session, clock.now - timedelta(days=1), clock.now + timedelta(minutes=1), 600)
    result = compare(replayed, Proposal(policy={"allow_walk_by": False}))
    assert result["current"]["prompts"] == 3
    assert result["proposed"]["prompts"] == 0
    assert result["proposed"]["suppressed"].get("walk_by_forbidden") == 3


def test_the_platform_row_holds_the_defaults(session, clock: Clock):
    make_charity(session, clock())
    row = session.scalars(select(PlatformSettings)).one()
    assert (row.min_dwell_s, row.allow_walk_by) == (15, True)
