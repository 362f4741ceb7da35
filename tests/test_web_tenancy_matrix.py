"""The admin pages' tenancy matrix, from the app's routes like the API's (test_admin_tenancy_matrix.py):
every page under /admin has a row, and for each one anonymous visitors are sent to the login page, an admin
of charity A gets 404 for charity B's objects, and a viewer sees no form that changes anything and is refused
(403) when posting anyway. A positive control proves the same requests succeed for someone allowed to make
them. Both databases (the client fixture is parametrised over SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from server.app import create_app
from server.campaigns.models import PairedDevice
from tests.admin_world import PASSWORD, World, make_world
from tests.delivery_world import subscriber_of
from tests.web_world import browser_of
from tests.world import opt_in

SITE = {"language": "de", "quiet_start": "21:00", "quiet_end": "08:00", "timezone": "Europe/Berlin"}
CAMPAIGN = {
    "name": "Winter helpers",
    "kind": "donation",
    "cta_url": "https://example.org/give",
    "priority": "0",
    "site_ids": "{site_id}",
    "variants-0-language": "de",
    "variants-0-label": "A",
    "variants-0-title": "Spenden?",
    "variants-0-body": "Danke.",
    "variants-0-cta_label": "Ja",
}
ORG = {"name": "Renamed", "privacy_contact": "dpo@example.org", "prompts_per_week": "", "cooldown_days": ""}
PLATFORM = {
    "max_prompts_per_day": "1",
    "max_prompts_per_week": "2",
    "max_prompts_per_month": "4",
    "min_org_cooldown_days": "14",
    "retention_days": "10",
    "min_dwell_s": "15",
    "allow_walk_by": "on",
    "quiet_start": "21:00",
    "quiet_end": "08:00",
}


@dataclass(frozen=True)
class Case:
    """How to call one page. kind: public | self (the signed-in person's own) | own (an object of theirs, not
    of an organisation) | list (the person's organisations' objects, narrowed by ?organisation_id) | object
    (an organisation's object, by path or form) | operator (the platform operator's alone)."""

    kind: str
    form: dict[str, str] | None = None
    ok: int = 200
    who: str = "owner_a"
    query: str = ""
    # A viewer's GET: 200 (and no form that posts), or 403 where the page is a form for editors alone, or
    # the domain lets owners alone read it (the audit log, as in the API).
    viewer_get: int = 200


# In the order the positive control runs them: what destroys comes after what needs the object.
MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/admin/login"): Case("public"),
    ("POST", "/admin/login"): Case("public", {"email": "owner@alpha.example", "password": PASSWORD}, ok=303),
    ("GET", "/admin/language/{lang}"): Case("public", ok=303),
    ("GET", "/admin/invite"): Case("public"),
    ("POST", "/admin/invite"): Case(
        "public",
        {"token": "{invite_token}", "password": "a brand new pass", "password_repeat": "a brand new pass"},
    ),
    ("GET", "/site/{site_id}"): Case("public"),
    ("GET", "/admin"): Case("self"),
    ("GET", "/admin/account"): Case("self"),
    ("GET", "/admin/results"): Case("self", ok=303, viewer_get=303),
    ("POST", "/admin/account/password"): Case(
        "self",
        {"current_password": PASSWORD, "new_password": "another long passphrase"}
        | {"new_password_repeat": "another long passphrase"},
        ok=303,
        who="editor_a",
    ),
    ("POST", "/admin/account/tokens"): Case(
        "self", {"name": "ci", "scope": "read", "expires_in_days": "30"}, ok=201
    ),
    ("POST", "/admin/account/tokens/{token_id}/revoke"): Case("own", ok=303),
    ("GET", "/admin/organisations"): Case("self"),
    ("POST", "/admin/organisations"): Case(
        "operator", {"slug": "gamma", "name": "Gamma"}, ok=303, who="operator"
    ),
    ("GET", "/admin/organisations/{org_id}"): Case("object"),
    ("POST", "/admin/organisations/{org_id}"): Case("object", ORG | {"version": "1"}, ok=303),
    ("POST", "/admin/organisations/{org_id}/suspend"): Case(
        "object", {"version": "2"}, ok=303, who="operator"
    ),
    ("POST", "/admin/organisations/{org_id}/unsuspend"): Case(
        "object", {"version": "3"}, ok=303, who="operator"
    ),
    ("GET", "/admin/organisations/{org_id}/audit"): Case("object", viewer_get=403),
    ("POST", "/admin/organisations/{org_id}/invites"): Case(
        "object", {"email": "x@y.example", "role": "viewer"}, ok=201
    ),
    ("POST", "/admin/organisations/{org_id}/invites/{invite_id}/revoke"): Case("object", ok=303),
    ("POST", "/admin/organisations/{org_id}/members/{membership_id}"): Case(
        "object", {"role": "editor", "version": "1"}, ok=303
    ),
    ("GET", "/admin/sites"): Case("list"),
    ("GET", "/admin/sites/new"): Case("list"),
    ("POST", "/admin/sites"): Case("object", SITE | {"organisation_id": "{org_id}", "name": "Shop"}, ok=303),
    ("GET", "/admin/sites/{site_id}"): Case("object"),
    ("POST", "/admin/sites/{site_id}"): Case(
        "object", SITE | {"name": "Door", "address": "Hauptstr. 1", "version": "1"}, ok=303
    ),
    ("GET", "/admin/sites/{site_id}/sign.svg"): Case("object", query="?lang=en"),
    ("POST", "/admin/sites/{site_id}/beacons"): Case(
        "object", {"kind": "eddystone_uid", "identifier": "00112233445566778899/aabbccddeeff"}, ok=303
    ),
    ("POST", "/admin/sites/{site_id}/beacons/{beacon_id}/remove"): Case("object", ok=303),
    ("GET", "/admin/gateways"): Case("list"),
    ("GET", "/admin/gateways/new"): Case("list"),
    ("POST", "/admin/gateways"): Case("object", {"site_id": "{site_id}", "name": "back door"}, ok=201),
    ("GET", "/admin/gateways/{gateway_id}"): Case("object"),
    ("POST", "/admin/gateways/{gateway_id}/rotate"): Case("object", ok=201),
    ("POST", "/admin/gateways/{gateway_id}/revoke"): Case("object", ok=303),
    ("GET", "/admin/campaigns"): Case("list"),
    ("GET", "/admin/campaigns/new"): Case("list"),
    ("POST", "/admin/campaigns"): Case("object", CAMPAIGN | {"organisation_id": "{org_id}"}, ok=303),
    ("GET", "/admin/campaigns/{campaign_id}"): Case("object"),
    ("GET", "/admin/campaigns/{campaign_id}/edit"): Case("object", viewer_get=403),
    ("POST", "/admin/campaigns/{campaign_id}/edit"): Case(
        "object", CAMPAIGN | {"priority": "5", "version": "1"}, ok=303
    ),
    ("POST", "/admin/campaigns/{campaign_id}/activate"): Case("object", ok=303),
    ("POST", "/admin/campaigns/{campaign_id}/pause"): Case("object", ok=303),
    ("POST", "/admin/campaigns/{campaign_id}/resume"): Case("object", ok=303),
    ("POST", "/admin/campaigns/{campaign_id}/test-send"): Case(
        "object", {"test_device_id": "{test_device_id}", "language": "de"}, ok=303
    ),
    ("POST", "/admin/campaigns/{campaign_id}/end"): Case("object", ok=303),
    ("GET", "/admin/organisations/{org_id}/test-devices"): Case("object"),
    ("POST", "/admin/organisations/{org_id}/test-devices/pairing-code"): Case("object", ok=201),
    ("POST", "/admin/organisations/{org_id}/test-devices/{device_id}/remove"): Case("object", ok=303),
    ("GET", "/admin/explain"): Case("object", query="?site_id={site_id}&dwell_s=20"),
    # v2: the role change above ran first.
    ("POST", "/admin/organisations/{org_id}/members/{membership_id}/remove"): Case(
        "object", {"version": "2"}, ok=303
    ),
    ("GET", "/admin/platform"): Case("operator", who="operator"),
    ("POST", "/admin/platform"): Case("operator", PLATFORM | {"version": "1"}, ok=303, who="operator"),
    ("GET", "/admin/platform/users"): Case("operator", who="operator"),
    ("POST", "/admin/platform/users/{user_id}/disable"): Case("operator", ok=303, who="operator"),
    ("POST", "/admin/platform/users/{user_id}/enable"): Case("operator", ok=303, who="operator"),
    ("GET", "/admin/platform/fleet"): Case("operator", who="operator"),
    ("GET", "/admin/organisations/{org_id}/impact"): Case("object", query="?since=2026-11-01"),
    ("GET", "/admin/organisations/{org_id}/impact/variants"): Case("object"),
    ("GET", "/admin/organisations/{org_id}/open-data"): Case("object"),
    ("POST", "/admin/organisations/{org_id}/open-data"): Case(
        "object", {"licence": "CC0-1.0", "title": "Counts"}, ok=303, who="editor_a"
    ),
    # v2: the site's update above ran first.
    ("POST", "/admin/organisations/{org_id}/open-data/sites/{site_id}"): Case(
        "object", {"publish": "yes", "version": "2"}, ok=303, who="editor_a"
    ),
    ("GET", "/admin/organisations/{org_id}/webhooks"): Case("object"),
    ("POST", "/admin/organisations/{org_id}/webhooks"): Case(
        "object", {"url": "https://hooks.example.org/in", "event_types": "prompt.accepted"}, ok=201
    ),
    ("GET", "/admin/organisations/{org_id}/webhooks/{endpoint_id}"): Case("object"),
    ("POST", "/admin/organisations/{org_id}/webhooks/{endpoint_id}"): Case(
        "object",
        {"url": "https://hooks.example.org/other", "event_types": "prompt.declined", "enabled": "on"},
        ok=303,
        who="editor_a",
    ),
    ("POST", "/admin/organisations/{org_id}/webhooks/{endpoint_id}/rotate"): Case("object", ok=201),
    ("POST", "/admin/organisations/{org_id}/webhooks/{endpoint_id}/test"): Case("object", ok=303),
    ("POST", "/admin/organisations/{org_id}/webhooks/{endpoint_id}/delete"): Case("object", ok=303),
    ("POST", "/admin/organisations/{org_id}/confirmation-secret"): Case("object", ok=201, who="editor_a"),
    ("POST", "/admin/organisations/{org_id}/confirmation-secret/delete"): Case("object", ok=303),
    ("POST", "/admin/logout"): Case("self", ok=303, who="member_a"),
}
B_NAMES = ("beta door", "beta helpers", "beta e.V.", "owner@beta.example")


def page_routes() -> set[tuple[str, str]]:
    """(method, path) of every page for people: /admin but the JSON API and the static files, and /site."""
    routes = set()
    for route in iter_route_contexts(create_app().routes):
        path = getattr(route, "path", "")
        if path.startswith("/admin/api/") or path.startswith("/admin/static"):
            continue
        if path.startswith(("/admin", "/site/")):
            routes |= {(method, path) for method in route.methods or ()}
    assert len(routes) > 40, "the admin pages are not mounted"
    return routes


def test_every_page_has_a_matrix_entry():
    routes = page_routes()
    missing = sorted(routes - MATRIX.keys())
    assert not missing, f"add these pages to the MATRIX: {missing}"
    assert not sorted(MATRIX.keys() - routes), "the MATRIX names pages that no longer exist"


def _fill(value: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), value)


def call(client, world: World, key: tuple[str, str], side: str, who: str | None):
    method, template = key
    case = MATRIX[key]
    ids = world.ids[side] | {"invite_token": world.invite_token, "lang": "en"}
    url = _fill(template + case.query, ids)
    headers: dict[str, str] = {"Sec-Fetch-Site": "same-origin"}
    form = {k: _fill(v, ids) for k, v in (case.form or {}).items()}
    if who is not None:
        browser = browser_of(world, who)
        headers["Cookie"] = browser.cookie
        form["csrf_token"] = browser.csrf
    if method == "GET":
        return client.get(url, headers=headers, follow_redirects=False)
    return client.post(url, data=form, headers=headers, follow_redirects=False)


@pytest.fixture
def world(client, session, clock) -> World:
    world = make_world(session, clock())
    phones = {side: opt_in(client) for side in world.ids}
    for side, ids in world.ids.items():  # a phone paired as each charity's test device
        device = PairedDevice(
            organisation_id=ids["org_id"], subscriber_id=subscriber_of(session, phones[side]).id, label="t"
        )
        session.add(device)
        session.flush()
        ids["test_device_id"] = ids["device_id"] = device.id
    session.commit()
    return world


def test_anonymous_visitors_are_sent_to_the_login_page(client, world):
    for key, case in MATRIX.items():
        if case.kind == "public":
            continue
        answer = call(client, world, key, "b", None)
        assert answer.status_code == 303, (key, answer.text)
        assert answer.headers["location"].startswith("/admin/login?next=%2F"), key


def test_an_admin_of_charity_a_gets_404_for_charity_b(client, world):
    a_list = 0
    for key, case in MATRIX.items():
        if case.kind in {"object", "own"}:
            answer = call(client, world, key, "b", "owner_a")
            assert answer.status_code == 404, (key, answer.text[:500])
            assert answer.headers["content-type"].startswith("text/html"), key
        elif case.kind == "list":
            answer = call(client, world, key, "a", "owner_a")
            assert answer.status_code == 200, key
            assert not any(name in answer.text for name in B_NAMES), key
            a_list += "alpha" in answer.text
            url = f"{key[1]}?organisation_id={world.ids['b']['org_id']}"
            narrowed = client.get(url, headers={"Cookie": browser_of(world, "owner_a").cookie})
            assert narrowed.status_code == 404, (key, narrowed.text[:300])
        elif case.kind == "operator":
            answer = call(client, world, key, "b", "owner_a")
            assert answer.status_code == 403, (key, answer.text[:300])
    assert a_list, "the lists showed nothing of charity A either"
    for page in ("/admin", "/admin/organisations"):
        answer = client.get(page, headers={"Cookie": browser_of(world, "owner_a").cookie})
        assert "alpha e.V." in answer.text
        assert not any(name in answer.text for name in B_NAMES), page


POSTING_FORM = re.compile(r'<form\b[^>]*\bmethod="post"[^>]*\baction="([^"]*)"', re.I)


def test_a_viewer_sees_no_form_that_changes_anything_and_is_refused_when_posting(client, world):
    shown = 0
    for (method, path), case in MATRIX.items():
        if case.kind not in {"object", "list", "operator"}:
            continue
        answer = call(client, world, (method, path), "a", "viewer_a")
        if method == "GET":
            if case.kind == "operator" or case.viewer_get == 403:
                assert answer.status_code == 403, path
                continue
            assert answer.status_code == 200, (path, answer.text[:300])
            forms = [action for action in POSTING_FORM.findall(answer.text) if action != "/admin/logout"]
            assert not forms, (path, forms)
            shown += 1
        else:
            assert answer.status_code == 403, ((method, path), answer.text[:500])
    assert shown > 10


def test_the_same_requests_succeed_for_those_allowed(client, world):
    for key, case in MATRIX.items():
        answer = call(client, world, key, "a", case.who if case.kind != "public" else None)
        assert answer.status_code == case.ok, (key, answer.text[:1500])
