"""/metrics: the counts after real traffic, the same total from any of several workers, no label that names
a person, token, EID or address, and nothing for a caller without the metrics token."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from server.app import create_app
from server.core.config import Settings
from server.prompts.models import PromptDecision
from tests.conftest import Clock
from tests.served import Served, records, sqlite_copy
from tests.test_sightings import sighting, with_region
from tests.world import Phone, enrol, event, make_charity, opt_in

TOKEN = "metrics-token-for-the-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client: TestClient | httpx.Client) -> Samples:
    answer = client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return _samples(answer.text)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


@pytest.fixture
def metered(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


def test_the_metrics_count_events_resolutions_decisions_and_requests(metered, session, clock: Clock):
    charity = with_region(session, make_charity(session, clock()))
    with TestClient(create_app(metered, clock=clock)) as client:
        gateway = enrol(client, charity.enrolment_code)
        phone = opt_in(client)
        before = _scrape(client)

        stranger = Phone({}, bytes(range(16)), 10)
        batch = [
            event("event-0001", phone, clock()),
            event("event-0002", stranger, clock()),
            {"id": "event-0003", "kind": "enter"},  # no eid, no time: rejected
        ]
        first = client.post("/gateway/v1/events", json={"events": batch}, headers=gateway)
        assert first.status_code == 422
        again = client.post("/gateway/v1/events", json={"events": batch[:1]}, headers=gateway)
        assert again.json()["duplicates"] == ["event-0001"]
        clock.advance(30)
        phoned = client.post(
            "/mobile/v1/sightings", json=sighting("ios-0001", clock()), headers=phone.headers
        )
        assert phoned.status_code == 200
        after = _scrape(client)

    assert _delta(before, after, "nahbar_events_received_total", source="gateway") == 4
    assert _delta(before, after, "nahbar_events_total", source="gateway", result="accepted") == 2
    assert _delta(before, after, "nahbar_events_total", source="gateway", result="duplicate") == 1
    assert _delta(before, after, "nahbar_events_total", source="gateway", result="rejected") == 1
    assert _delta(before, after, "nahbar_events_total", source="phone", result="accepted") == 1
    assert _delta(before, after, "nahbar_eid_resolutions_total", result="hit") == 2
    assert _delta(before, after, "nahbar_eid_resolutions_total", result="miss") == 1
    # Every decision the database recorded is counted, by outcome and reason, and nothing else.
    session.expire_all()
    recorded = session.execute(
        select(PromptDecision.outcome, PromptDecision.reason, func.count()).group_by(
            PromptDecision.outcome, PromptDecision.reason
        )
    ).all()
    assert recorded, "the sightings led to decisions"
    counted = {
        (dict(labels)["outcome"], dict(labels)["reason"]): value - before.get((name, labels), 0.0)
        for (name, labels), value in after.items()
        if name == "nahbar_decisions_total" and value - before.get((name, labels), 0.0)
    }
    assert counted == {(outcome, reason): n for outcome, reason, n in recorded}
    events = "/gateway/v1/events"
    count = "nahbar_http_request_duration_seconds_count"
    assert _delta(before, after, count, method="POST", route=events, status="422") == 1
    assert _delta(before, after, count, method="POST", route=events, status="200") == 1
    # What the database holds, read at the scrape: one gateway, nothing waiting in the outbox.
    assert sum(v for (name, _), v in after.items() if name == "nahbar_gateways") == 1
    assert _value(after, "nahbar_outbox_pending") == 0
    assert _value(after, "nahbar_scheduler_job_runs_total", job="eid-rotation", result="ok") >= 1


# What must never be a label value: ids, EIDs and keys in hex, tokens, addresses, e-mails.
SECRETS = [
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}"),  # a UUID (subscriber)
    re.compile(r"[0-9a-fA-F]{16}"),  # an EID, a key, a hash
    re.compile(r"\bn(dv|gw|ss|at|iv)_"),  # our bearer tokens
    re.compile(r"[A-Za-z0-9_-]{32}"),  # a landing token, any long random string
    re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),  # IPv4
    re.compile(r"[0-9a-fA-F]*:[0-9a-fA-F]*:"),  # IPv6
    re.compile(r"testclient|@"),  # the test client's address, an e-mail
]


def test_no_label_names_a_person_token_eid_or_address(metered, session, clock: Clock):
    charity = make_charity(session, clock())
    with TestClient(create_app(metered, clock=clock)) as client:
        gateway = enrol(client, charity.enrolment_code)
        phone = opt_in(client)
        client.post("/gateway/v1/events", json={"events": [event("e-1", phone, clock())]}, headers=gateway)
        client.get("/p/" + "A" * 43)
        client.get(
            f"/gateway/v1/{phone.eid_at(clock())}/nothing", headers={"X-Forwarded-For": "198.51.100.7"}
        )
        client.get("/mobile/v1/me", headers=phone.headers)
        client.request("BREW", "/mobile/v1/me")
        client.post("/admin/api/v1/auth/login", json={"email": "who@example.org", "password": "wrong one!"})
        samples = _scrape(client)

    values = {value for _, labels in samples for _, value in labels}
    assert "/p/{token}" in values
    assert "/gateway/*" in values  # no route: the first segment only
    leaks = sorted(v for v in values if any(pattern.search(v) for pattern in SECRETS))
    assert leaks == []


def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(metered, settings, clock):
    with TestClient(create_app(settings, clock=clock)) as client:
        off = client.get("/metrics", headers=BEARER)
        assert (off.status_code, off.json()["code"]) == (404, "not_found")
    with TestClient(create_app(metered, clock=clock)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            refused = client.get("/metrics", headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        assert client.get("/metrics", headers=BEARER).status_code == 200
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_the_grafana_dashboard_uses_only_metrics_the_server_serves(metered, clock):
    dashboard = json.loads((Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bnahbar_\w+", target["expr"])
    }
    with TestClient(create_app(metered, clock=clock)) as client:
        answer = client.get("/metrics", headers=BEARER)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    served = {
        family.name + suffix
        for family in text_string_to_metric_families(answer.text)
        for suffix in suffixes.get(family.type, ("",))
    }
    assert len(used) >= 10
    assert used <= served, used - served


@pytest.mark.slow
def test_with_two_workers_any_scrape_counts_both_workers_requests(tmp_path, sqlite_template):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier run")
    served = Served(
        tmp_path,
        sqlite_copy(sqlite_template, tmp_path),
        workers=2,
        NAHBAR_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    with served as server:
        assert not (folder / "counter_1.db").exists(), "the folder is emptied at start"
        sent = 0
        while True:  # a fresh connection each time: the kernel hands them to either worker
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            sent += 1
            lines = [r for r in records(server.output()) if r.get("path") == "/healthz"]
            if sent >= 20 and len({r["pid"] for r in lines}) == 2:
                break
            assert sent < 500, "one worker took every connection"
        with httpx.Client(base_url=server.url, timeout=10) as scraper:
            scrapes = [_scrape(scraper) for _ in range(4)]
        output = server.stop()

    served_by = Counter(r["pid"] for r in records(output) if r.get("path") == "/healthz")
    assert len(served_by) == 2
    assert sum(served_by.values()) == sent
    count = "nahbar_http_request_duration_seconds_count"
    for samples in scrapes:
        assert _value(samples, count, method="GET", route="/healthz", status="200") == sent
        # Each worker runs the EID rotation; one leads.
        assert _value(samples, "nahbar_scheduler_job_runs_total", job="eid-rotation", result="ok") >= 2
        assert _value(samples, "nahbar_scheduler_leader") == 1


def test_metrics_answer_while_the_database_cannot(empty_database_url, clock):
    """Before the migration (or with the database away) the workers' own metrics still come."""
    unmigrated = Settings(
        environment="test",
        database_url=empty_database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        metrics_token=TOKEN,
    )
    with TestClient(create_app(unmigrated, clock=clock)) as client:
        assert client.get("/healthz").status_code == 200
        samples = _scrape(client)
    names = {name for name, _ in samples}
    assert "nahbar_outbox_pending" not in names
    assert any(name.startswith("nahbar_http_request_duration_seconds") for name in names)
