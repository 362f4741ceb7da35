"""Rules protecting the people prompted: what a campaign needs to run, and caps within the platform's."""

from __future__ import annotations

from sqlalchemy import update

from server.tenancy.models import Organisation
from tests.admin_world import API, make_world


def test_a_valid_campaign_is_created_as_a_draft_and_can_be_paused_and_resumed(client, session, clock):
    world = make_world(session, clock())
    a = world.ids["a"]
    body = {
        "organisation_id": a["org_id"],
        "name": "Winter",
        "kind": "donation",
        "site_ids": [a["site_id"]],
        "cta_url": "https://alpha.example.org/give",
        "priority": 2,
        "daily_budget": 20,
        "variants": [
            {"language": "de", "title": "Spenden?", "body": "Danke.", "cta_label": "Ja"},
            {"language": "en", "label": "B", "title": "Donate?", "body": "Thanks.", "cta_label": "Yes"},
        ],
    }
    made = client.post(f"{API}/campaigns", json=body, headers=world.headers["editor_a"])
    assert made.status_code == 201, made.text
    campaign = made.json()
    assert (campaign["status"], campaign["site_ids"], len(campaign["variants"])) == (
        "draft",
        [a["site_id"]],
        2,
    )
    url = f"{API}/campaigns/{campaign['id']}"
    for action, status in (("activate", "active"), ("pause", "paused"), ("resume", "active")):
        answer = client.post(f"{url}/{action}", headers=world.headers["editor_a"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status
    assert client.post(f"{url}/resume", headers=world.headers["editor_a"]).status_code == 409
    listed = client.get(
        f"{API}/campaigns",
        params={"status": "active", "sort": "-priority"},
        headers=world.headers["viewer_a"],
    ).json()
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]


def _activate(client, world):
    url = f"{API}/campaigns/{world.ids['a']['campaign_id']}/activate"
    return client.post(url, headers=world.headers["owner_a"])


def _fields(answer) -> list[str]:
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "rule_violation"
    return [e["field"] for e in answer.json()["errors"]]


def test_no_activation_without_the_organisations_privacy_contact(client, session, clock):
    world = make_world(session, clock())
    session.execute(
        update(Organisation).where(Organisation.id == world.ids["a"]["org_id"]).values(privacy_contact=None)
    )
    session.commit()
    answer = _activate(client, world)
    assert _fields(answer) == ["organisation.privacy_contact"]
    assert "privacy contact" in answer.json()["errors"][0]["message"]


def test_no_activation_without_https_or_a_variant_in_the_sites_language(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/campaigns/{world.ids['a']['campaign_id']}"
    english_only = [{"language": "en", "title": "Help?", "body": "Please.", "cta_label": "Yes"}]
    changed = client.patch(
        url,
        json={"cta_url": "http://alpha.example.org/help", "variants": english_only},
        headers=world.headers["owner_a"] | {"If-Match": '"v1"'},
    )
    assert changed.status_code == 200  # a draft may be incomplete
    answer = _activate(client, world)
    assert _fields(answer) == ["cta_url", "variants"]
    assert "'de'" in answer.json()["errors"][1]["message"]
    assert client.get(url, headers=world.headers["owner_a"]).json()["status"] == "draft"


def test_an_active_campaign_cannot_be_changed_into_an_invalid_one(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/campaigns/{world.ids['a']['campaign_id']}"
    assert _activate(client, world).status_code == 200
    etag = client.get(url, headers=world.headers["owner_a"]).headers["ETag"]
    answer = client.patch(
        url, json={"cta_url": "javascript:alert(1)"}, headers=world.headers["owner_a"] | {"If-Match": etag}
    )
    assert _fields(answer) == ["cta_url"]
    assert client.get(url, headers=world.headers["owner_a"]).json()["cta_url"].startswith("https://")


def test_variants_over_the_length_limits_are_refused_with_the_field(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/campaigns/{world.ids['a']['campaign_id']}"
    long = [{"language": "de", "title": "x" * 81, "body": "y", "cta_label": "z"}]
    answer = client.patch(
        url, json={"variants": long}, headers=world.headers["owner_a"] | {"If-Match": '"v1"'}
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["variants[0].title"]


def test_caps_beyond_the_platform_are_refused_saying_which_and_why(client, session, clock):
    world = make_world(session, clock())
    org = f"{API}/organisations/{world.ids['a']['org_id']}"
    owner = world.headers["owner_a"] | {"If-Match": '"v1"'}
    too_many = client.patch(org, json={"prompts_per_week": 3}, headers=owner)
    assert too_many.status_code == 422
    assert (too_many.json()["field"], too_many.json()["limit"]) == ("prompts_per_week", 2)
    assert "platform maximum of 2" in too_many.json()["detail"]
    too_short = client.patch(org, json={"cooldown_days": 7}, headers=owner)
    assert (too_short.status_code, too_short.json()["field"]) == (422, "cooldown_days")
    assert (
        client.patch(org, json={"prompts_per_week": 1, "cooldown_days": 30}, headers=owner).status_code == 200
    )

    campaign = f"{API}/campaigns/{world.ids['a']['campaign_id']}"
    dwell = client.patch(
        campaign,
        json={"min_dwell_s": 5, "max_dwell_s": 7200},
        headers=world.headers["owner_a"] | {"If-Match": '"v1"'},
    )
    assert [e["field"] for e in dwell.json()["errors"]] == ["min_dwell_s", "max_dwell_s"]


def test_the_operator_sets_the_platform_maxima(client, session, clock):
    world = make_world(session, clock())
    url = f"{API}/platform/settings"
    operator = world.headers["operator"]
    etag = client.get(url, headers=world.headers["viewer_a"]).headers["ETag"]
    owner = world.headers["owner_a"] | {"If-Match": etag}
    assert client.patch(url, json={"max_prompts_per_week": 3}, headers=owner).status_code == 403
    assert client.patch(url, json={"retention_days": 7}, headers=operator).status_code == 428
    raised = client.patch(
        url, json={"max_prompts_per_week": 3, "retention_days": 7}, headers=operator | {"If-Match": etag}
    )
    assert raised.status_code == 200
    assert (raised.json()["max_prompts_per_week"], raised.json()["retention_days"]) == (3, 7)
    assert (
        client.patch(url, json={"retention_days": 9}, headers=operator | {"If-Match": etag}).status_code
        == 412
    )
    org = f"{API}/organisations/{world.ids['a']['org_id']}"
    allowed = client.patch(
        org, json={"prompts_per_week": 3}, headers=world.headers["owner_a"] | {"If-Match": '"v1"'}
    )
    assert allowed.status_code == 200
    trail = client.get(f"{API}/audit", params={"entity": "platform_settings"}, headers=operator).json()[
        "items"
    ]
    assert [(e["before"]["retention_days"], e["after"]["retention_days"]) for e in trail] == [(14, 7)]
