"""The simulator: a recorded period replayed with the settings in force reproduces every live decision, and
proposed settings change the counts the way they should."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from server.audit.models import AuditEntry
from server.policy import repository
from server.policy.simulate import Proposal, compare, replay
from server.prompts.models import PromptDecision
from server.sites.models import Site
from tests.admin_world import API, add_user, signed_in
from tests.conftest import Clock
from tests.world import enrol, event, make_charity, opt_in

NAHBAR = Path(sys.executable).parent / "nahbar"


def record_a_month(client, session, clock: Clock, settings):
    """Three phones walking past two charities for a month: enters, dwells of every length, exits, nights,
    the hospice's own quiet hours after lunch, dismissals and a "not here", all through the live HTTP path."""
    start = clock()
    hospice = make_charity(session, clock(), slug="hospiz", kind="volunteer")
    foodbank = make_charity(session, clock(), slug="tafel", kind="donation")
    site = session.get_one(Site, hospice.site_id)
    site.quiet_start, site.quiet_end = "13:00", "16:00"
    session.commit()
    gateways = [enrol(client, hospice.enrolment_code), enrol(client, foodbank.enrolment_code)]
    phones = [opt_in(client), opt_in(client, ["volunteer"], "en"), opt_in(client)]
    rng = random.Random(6)
    n = 0
    for _ in range(70):
        clock.advance(rng.uniform(2, 30) * 3600)
        phone = rng.choice(phones)
        gateway = rng.choice(gateways)
        walk = [event(f"evt-sim-{n:05d}", phone, clock())]
        for dwell in sorted(rng.sample([5, 14, 16, 40, 300, 1300], rng.randint(0, 3))):
            n += 1
            walk.append(event(f"evt-sim-{n:05d}", phone, clock(), "dwell", dwell))
        n += 1
        answer = client.post("/gateway/v1/events", json={"events": walk}, headers=gateway)
        assert answer.status_code == 200, answer.text
        if answer.json()["prompts"] and rng.random() < 0.5:
            clock.advance(5)
            prompt = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"][0]
            kind = rng.choice(["dismissed", "dismissed", "accepted", "not_here"])
            url = f"/mobile/v1/me/prompts/{prompt['id']}/responses"
            assert client.post(url, json={"kind": kind}, headers=phone.headers).status_code == 201
        clock.advance(600)
        exit_event = event(f"evt-sim-{n:05d}", phone, clock(), "exit", 0)
        n += 1
        client.post("/gateway/v1/events", json={"events": [exit_event]}, headers=gateway)
    session.expire_all()
    return repository.recording(
        session, start, clock() + timedelta(seconds=1), settings.prompt_ttl_seconds
    ), (hospice, foodbank)


def test_replay_with_the_current_settings_reproduces_the_live_decisions(
    client, session, clock: Clock, settings
):
    recording, _ = record_a_month(client, session, clock, settings)
    live = [
        (d.event_id, d.reason, d.campaign_id)
        for d in session.scalars(select(PromptDecision).order_by(PromptDecision.id))
    ]
    tally = replay(recording, keep_log=True)
    assert tally.log is not None
    assert [(r.event_id, r.reason, r.campaign_id) for r in tally.log] == live
    reasons = {reason for _, reason, _ in live}
    assert {"prompted", "dwell_too_short", "quiet_hours", "site_quiet_hours"} <= reasons, reasons
    assert tally.prompts == sum(1 for _, reason, _ in live if reason == "prompted")


def test_proposed_settings_change_the_counts_and_the_report_stays_in_the_charitys_sites(
    client, session, clock: Clock, settings
):
    recording, (hospice, _foodbank) = record_a_month(client, session, clock, settings)
    stricter = Proposal(policy={"max_per_week": 1, "quiet_start": "18:00"})
    result = compare(recording, stricter)
    assert result["proposed"]["prompts"] <= result["current"]["prompts"]
    assert result["current"]["prompts"] > 0
    assert sum(result["current"]["prompts_per_day"].values()) == result["current"]["prompts"]
    none = compare(recording, Proposal(campaigns={hospice.campaign_id: {"status": "paused"}}))
    assert str(hospice.campaign_id) not in none["proposed"]["per_campaign"]
    mine = compare(recording, Proposal(), sites=[hospice.site_id])
    assert set(mine["current"]["per_site"]) <= {str(hospice.site_id)}
    assert mine["current"] == mine["proposed"]
    seen: list[int] = []
    replay(recording, progress=seen.append)
    assert sum(seen) == len(recording.events)


def test_the_simulate_endpoint_reports_the_charitys_own_sites(client, session, clock: Clock, settings):
    _, (hospice, foodbank) = record_a_month(client, session, clock, settings)
    owner = add_user(session, "owner@hospiz.example", roles={hospice.organisation_id: "owner"})
    viewer = add_user(session, "viewer@hospiz.example", roles={hospice.organisation_id: "viewer"})
    session.commit()
    headers, as_viewer = signed_in(session, owner, clock()), signed_in(session, viewer, clock())
    session.commit()
    url = f"{API}/organisations/{hospice.organisation_id}/simulate"
    decided = session.scalar(select(func.count()).select_from(PromptDecision))
    body = {
        "days": 40,
        "policy": {"max_per_week": 1},
        "campaigns": {str(hospice.campaign_id): {"daily_budget": 0}},
    }
    answer = client.post(url, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert set(result["current"]["per_site"]) == {str(hospice.site_id)}
    assert result["proposed"]["prompts"] == 0
    assert result["proposed"]["suppressed"]["budget_exhausted"] > 0
    foreign = {"campaigns": {str(foodbank.campaign_id): {"priority": 9}}}
    assert client.post(url, json=foreign, headers=headers).status_code == 404
    assert client.post(url, json={}, headers=as_viewer).status_code == 403
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == decided, (
        "a replay records nothing"
    )
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "policy.simulate")).all()
    assert (entry.entity_id, entry.organisation_id, entry.actor_user_id) == (
        str(hospice.organisation_id),
        hospice.organisation_id,
        owner.id,
    )
    assert entry.after is not None
    assert entry.after["days"] == 40
    assert entry.after["campaigns"][str(hospice.campaign_id)]["daily_budget"] == 0


def test_nahbar_simulate_prints_both_sides_with_a_progress_bar(
    client, session, clock: Clock, settings, tmp_path
):
    recording, (hospice, _) = record_a_month(client, session, clock, settings)
    proposal = tmp_path / "stricter.json"
    proposal.write_text(json.dumps({"policy": {"max_per_week": 1}}))
    env = os.environ | {
        "NAHBAR_DATABASE_URL": settings.database_url,
        "NAHBAR_SECRET_KEY": settings.secret_key.get_secret_value(),
        "NAHBAR_ENVIRONMENT": "test",
        "COLUMNS": "120",
    }
    until = (clock() + timedelta(seconds=2)).replace(tzinfo=None).isoformat(timespec="seconds")
    done = subprocess.run(
        [str(NAHBAR), "simulate", "--days", "60", "--until", until, "--proposal", str(proposal)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(recording.events)} events" in done.stdout
    assert "replaying (proposed)" in done.stdout
    live = session.scalar(select(func.count()).where(PromptDecision.reason == "prompted"))
    prompts_row = next(line for line in done.stdout.splitlines() if line.strip("│ ").startswith("prompts"))
    assert str(live) in prompts_row
