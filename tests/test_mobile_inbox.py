"""The phone's inbox: its own prompts only, and a clear 401 without a valid device token."""

from __future__ import annotations

from urllib.parse import urlsplit

from server.prompts.tokens import landing_token
from tests.conftest import TEST_SECRET, Clock
from tests.world import enrol, event, make_charity, opt_in


def test_each_phone_sees_only_its_own_prompts(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    walker, bystander = opt_in(client), opt_in(client)
    client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-m-00001", walker, clock(), "dwell", 20)]},
        headers=gateway,
    )
    assert len(client.get("/mobile/v1/me/prompts", headers=walker.headers).json()["prompts"]) == 1
    assert client.get("/mobile/v1/me/prompts", headers=bystander.headers).json() == {"prompts": []}


def test_each_prompt_links_to_its_landing_page_as_its_push_does(client, session, clock: Clock, settings):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    walker = opt_in(client, language="en")
    client.post(
        "/gateway/v1/events",
        json={"events": [event("evt-m-00002", walker, clock(), "dwell", 20)]},
        headers=gateway,
    )
    [prompt] = client.get("/mobile/v1/me/prompts", headers=walker.headers).json()["prompts"]
    token = landing_token(TEST_SECRET, prompt["id"])
    assert prompt["landing_url"] == f"{settings.public_url.rstrip('/')}/p/{token}"
    page = client.get(urlsplit(prompt["landing_url"]).path)
    assert page.status_code == 200
    assert "Help?" in page.text


def test_inbox_needs_a_valid_device_token(client):
    for headers in ({}, {"Authorization": "Bearer ndv_guess"}, {"Authorization": "Basic abc"}):
        answer = client.get("/mobile/v1/me/prompts", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["code"] == "unauthorized"


def test_opt_in_refuses_unknown_consent_versions_and_scopes(client):
    unknown = client.post("/mobile/v1/optin", json={"consent_text_version": "1999", "scopes": ["volunteer"]})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_consent_version"
    bad_scope = client.post("/mobile/v1/optin", json={"consent_text_version": "2026-11", "scopes": ["ads"]})
    assert bad_scope.status_code == 422
    assert bad_scope.json()["errors"][0]["field"] == "scopes[0]"


def test_unknown_routes_answer_problem_json(client):
    answer = client.get("/no/such/thing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not_found"
