"""The funnel and the suppressions on both databases: equal to a hand-computed answer on a seeded history,
unchanged when a person withdraws or when raw sightings are purged; a visit with several short dwells is
one suppression."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from server.impact.models import ImpactTally
from server.presence.models import ProximityEvent, Visit
from server.prompts.models import PromptDecision
from server.retention.tasks import purge
from tests.admin_world import API, add_user, signed_in
from tests.conftest import Clock
from tests.impact_world import EXPECTED_SUPPRESSIONS, EXPECTED_TOTALS, open_street, seed_history

DAY = date(2026, 11, 25)


def _admin(session, street, clock):
    user = add_user(session, "viewer@hospiz.example", roles={street.charity.organisation_id: "viewer"})
    headers = signed_in(session, user, clock.now)
    session.commit()
    return headers


def _funnel(street, headers, **params):
    answer = street.client.get(
        f"{API}/organisations/{street.charity.organisation_id}/impact/funnel",
        params={"since": DAY.isoformat(), "until": DAY.isoformat(), **params},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _suppressions(street, headers):
    answer = street.client.get(
        f"{API}/organisations/{street.charity.organisation_id}/impact/suppressions",
        params={"since": DAY.isoformat(), "until": DAY.isoformat()},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return {r["reason"]: r["count"] for r in answer.json()["reasons"]}


def test_the_funnel_equals_the_hand_computed_answer(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    headers = _admin(session, street, clock)
    assert _funnel(street, headers)["totals"]["seen"] == 0  # nothing folded yet: the job has not run
    assert street.fold() > 0
    funnel = _funnel(street, headers)
    assert funnel["totals"] == EXPECTED_TOTALS
    [day] = funnel["days"]
    assert day["day"] == DAY.isoformat()
    assert {k: day[k] for k in EXPECTED_TOTALS} == EXPECTED_TOTALS
    steps = {s["key"]: (s["count"], s["share_of_previous"]) for s in funnel["steps"]}
    assert steps["prompted"] == (3, 1.0)
    assert steps["accepted"] == (1, pytest.approx(0.5))  # of the two who opened it
    assert _suppressions(street, headers) == EXPECTED_SUPPRESSIONS


def test_short_dwells_of_one_visit_are_one_suppression(quiet_client, session, clock: Clock):
    """Raw decisions: ben's visit was decided too short twice, anna's and dora's too, emil's once; the funnel
    counts ben's visit once and moves the others' to their prompts."""
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    short = session.scalar(
        select(func.count()).select_from(PromptDecision).where(PromptDecision.reason == "dwell_too_short")
    )
    assert short == 7  # anna 2, ben 2, dora 2, emil 1
    street.fold()
    assert _suppressions(street, _admin(session, street, clock))["dwell_too_short"] == 1


def test_a_fold_in_the_middle_of_a_visit_moves_its_count(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    headers = _admin(session, street, clock)
    phone = street.phones["anna"]
    clock.advance(1800)  # a new visit by anna; a second prompt today is not allowed: a cap holds
    street.walk(phone, [5])
    street.fold()  # now counted as too short ...
    assert _suppressions(street, headers)["dwell_too_short"] == 2
    clock.advance(20)
    street.report(phone, "dwell", 25)
    street.fold()  # ... and now under the cap that held at 25 s: moved, not added
    assert _suppressions(street, headers) == {**EXPECTED_SUPPRESSIONS, "global_daily_cap": 1}
    assert _funnel(street, headers)["totals"]["seen"] == 6
    assert _funnel(street, headers)["totals"]["eligible"] == 4


def test_counts_stay_when_people_withdraw_and_raw_sightings_are_purged(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    for name in ("anna", "ben"):  # withdraw before the fold, too: the ledger holds their part already
        assert quiet_client.delete("/mobile/v1/me", headers=street.phones[name].headers).status_code == 204
    assert session.scalar(select(func.count()).select_from(ImpactTally)) > 0
    street.fold()
    for name in ("dora", "emil"):  # and after it
        assert quiet_client.delete("/mobile/v1/me", headers=street.phones[name].headers).status_code == 204
    clock.advance(timedelta(days=20).total_seconds())
    purge(quiet_client.app.state.runtime.sessions, 14, clock.now)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ProximityEvent)) == 0
    assert session.scalar(select(func.count()).select_from(Visit)) == 0
    street.fold()
    headers = _admin(session, street, clock)
    assert _funnel(street, headers)["totals"] == EXPECTED_TOTALS
    assert _suppressions(street, headers) == EXPECTED_SUPPRESSIONS


def test_filters_by_campaign_leave_out_what_no_campaign_owns(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    street.fold()
    headers = _admin(session, street, clock)
    totals = _funnel(street, headers, campaign_id=street.charity.campaign_id)["totals"]
    assert (totals["seen"], totals["eligible"], totals["prompted"], totals["accepted"]) == (None, None, 3, 1)
    other = _funnel(street, headers, site_id=street.charity.site_id, since="2026-11-24", until="2026-11-24")
    assert other["totals"]["seen"] == 0  # the day before: nothing


def test_the_csv_download_has_a_byte_order_mark_and_the_same_counts(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    street.fold()
    headers = _admin(session, street, clock)
    base = f"{API}/organisations/{street.charity.organisation_id}/impact"
    params = {"since": "2026-01-01", "until": "2026-12-31"}
    answer = quiet_client.get(f"{base}/funnel.csv", params=params, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    header, row = answer.content.decode("utf-8-sig").splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert (values["day"], values["site_name"], values["seen"], values["prompted"], values["accepted"]) == (
        "2026-11-25",
        "hospiz door",
        "5",
        "3",
        "1",
    )
    rows = quiet_client.get(f"{base}/suppressions.csv", params=params, headers=headers).content.decode(
        "utf-8-sig"
    )
    assert [line.split(",")[3::3] for line in rows.splitlines()[1:]] == [
        ["dwell_too_short", "1"],
        ["scope_not_consented", "1"],
    ]
