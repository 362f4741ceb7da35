"""The tenancy matrix, generated from the app's routes: every /admin/api/v1 route has an entry, and for each
one anonymous callers get 401, a user of charity A gets 404 for charity B's objects, and a viewer gets 403
on every change. A positive control proves the same requests succeed for someone allowed to make them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from server.app import create_app
from server.campaigns.models import PairedDevice
from tests.admin_world import API, PASSWORD, World, make_world
from tests.delivery_world import subscriber_of
from tests.world import opt_in

VALID_CAMPAIGN = {
    "organisation_id": "{org_id}",
    "name": "Winter helpers",
    "kind": "donation",
    "site_ids": ["{site_id}"],
    "cta_url": "https://example.org/give",
    "variants": [{"language": "de", "title": "Spenden?", "body": "Danke.", "cta_label": "Ja"}],
}


@dataclass(frozen=True)
class Case:
    """How to call one route. kind: public | self (the caller's own account) | own (an object of the caller,
    not of an organisation) | operator | object (an organisation's object, by path or body) | list."""

    kind: str
    body: dict[str, Any] | None = None
    ok: int = 200
    who: str = "owner_a"  # who succeeds, in the positive control
    headers: dict[str, str] | None = None
    narrow: tuple[str, str] = ("organisation_id", "org_id")  # a list's filter, and the id it is given


# In the order the positive control runs them: changes that destroy come after those that need the object.
MATRIX: dict[tuple[str, str], Case] = {
    ("POST", "/auth/login"): Case("public", {"email": "owner@alpha.example", "password": PASSWORD}),
    ("GET", "/auth/me"): Case("self"),
    ("GET", "/auth/tokens"): Case("self"),
    ("POST", "/auth/tokens"): Case("self", {"name": "ci", "scopes": ["read"]}, ok=201),
    ("DELETE", "/auth/tokens/{token_id}"): Case("own"),
    ("POST", "/auth/password"): Case(
        "self",
        {"current_password": PASSWORD, "new_password": "another long passphrase"},
        ok=204,
        who="editor_a",
    ),
    ("POST", "/auth/logout"): Case("self", ok=204, who="member_a"),
    ("GET", "/organisations"): Case("list", narrow=("q", "slug")),
    ("POST", "/organisations"): Case("operator", {"slug": "gamma", "name": "Gamma"}, ok=201, who="operator"),
    ("GET", "/organisations/{org_id}"): Case("object"),
    ("PATCH", "/organisations/{org_id}"): Case("object", {"name": "Renamed"}, headers={"If-Match": '"v1"'}),
    # The operator's alone, but under an organisation: another charity's is 404 like any of its objects.
    ("POST", "/organisations/{org_id}/suspend"): Case("object", who="operator", headers={"If-Match": '"v2"'}),
    ("POST", "/organisations/{org_id}/unsuspend"): Case(
        "object", who="operator", headers={"If-Match": '"v3"'}
    ),
    ("GET", "/organisations/{org_id}/members"): Case("object"),
    ("GET", "/organisations/{org_id}/members/{membership_id}"): Case("object"),
    ("PATCH", "/organisations/{org_id}/members/{membership_id}"): Case(
        "object", {"role": "editor"}, headers={"If-Match": '"v1"'}
    ),
    ("GET", "/organisations/{org_id}/invites"): Case("object"),
    ("POST", "/organisations/{org_id}/invites"): Case("object", {"email": "x@y.example"}, ok=201),
    ("DELETE", "/organisations/{org_id}/invites/{invite_id}"): Case("object"),
    ("POST", "/invites/accept"): Case(
        "public", {"token": "{invite_token}", "password": "a brand new passphrase"}
    ),
    ("GET", "/platform/settings"): Case("self"),
    ("PATCH", "/platform/settings"): Case(
        "operator", {"retention_days": 10}, who="operator", headers={"If-Match": '"v1"'}
    ),
    ("GET", "/sites"): Case("list"),
    ("POST", "/sites"): Case(
        "object", {"organisation_id": "{org_id}", "name": "Shop", "timezone": "Europe/Berlin"}, ok=201
    ),
    ("GET", "/sites/{site_id}"): Case("object"),
    ("PATCH", "/sites/{site_id}"): Case("object", {"address": "Hauptstr. 1"}, headers={"If-Match": '"v1"'}),
    ("GET", "/sites/{site_id}/beacons"): Case("object"),
    ("POST", "/sites/{site_id}/beacons"): Case(
        "object", {"kind": "eddystone_uid", "identifier": "00112233445566778899/aabbccddeeff"}, ok=201
    ),
    ("DELETE", "/sites/{site_id}/beacons/{beacon_id}"): Case("object", ok=204),
    ("GET", "/gateways"): Case("list"),
    ("POST", "/gateways"): Case("object", {"site_id": "{site_id}", "name": "back door"}, ok=201),
    ("GET", "/gateways/{gateway_id}"): Case("object"),
    ("POST", "/gateways/{gateway_id}/rotate"): Case("object"),
    ("POST", "/gateways/{gateway_id}/revoke"): Case("object"),
    ("GET", "/campaigns"): Case("list"),
    ("POST", "/campaigns"): Case("object", VALID_CAMPAIGN, ok=201),
    ("GET", "/campaigns/{campaign_id}"): Case("object"),
    ("PATCH", "/campaigns/{campaign_id}"): Case("object", {"priority": 5}, headers={"If-Match": '"v1"'}),
    ("POST", "/campaigns/{campaign_id}/activate"): Case("object"),
    ("POST", "/campaigns/{campaign_id}/pause"): Case("object"),
    ("POST", "/campaigns/{campaign_id}/resume"): Case("object"),
    ("POST", "/campaigns/{campaign_id}/end"): Case("object"),
    # v2: the role change above ran first.
    ("DELETE", "/organisations/{org_id}/members/{membership_id}"): Case(
        "object", ok=204, headers={"If-Match": '"v2"'}
    ),
    ("GET", "/sites/{site_id}/explain"): Case("object"),
    ("POST", "/organisations/{org_id}/simulate"): Case("object", {"days": 7}),
    ("POST", "/organisations/{org_id}/test-devices/pairing-codes"): Case("object", ok=201),
    ("GET", "/organisations/{org_id}/test-devices"): Case("object"),
    ("POST", "/organisations/{org_id}/campaigns/{campaign_id}/test-send"): Case(
        "object", {"test_device_id": "{test_device_id}", "language": "de"}, ok=201
    ),
    ("DELETE", "/organisations/{org_id}/test-devices/{test_device_id}"): Case("object", ok=204),
    ("GET", "/organisations/{org_id}/impact/funnel"): Case("object"),
    ("GET", "/organisations/{org_id}/impact/funnel.csv"): Case("object"),
    ("GET", "/organisations/{org_id}/impact/suppressions"): Case("object"),
    ("GET", "/organisations/{org_id}/impact/suppressions.csv"): Case("object"),
    ("GET", "/organisations/{org_id}/impact/variants"): Case("object"),
    ("GET", "/organisations/{org_id}/impact/daily-aggregates"): Case("object"),
    ("GET", "/organisations/{org_id}/open-data"): Case("object"),
    ("PUT", "/organisations/{org_id}/open-data"): Case("object", {"licence": "CC0-1.0"}),
    ("POST", "/organisations/{org_id}/confirmation-secret"): Case("object", {"grace_hours": 1}, ok=201),
    ("DELETE", "/organisations/{org_id}/confirmation-secret"): Case("object", ok=204),
    ("GET", "/organisations/{org_id}/webhooks"): Case("object"),
    ("POST", "/organisations/{org_id}/webhooks"): Case(
        "object", {"url": "https://hooks.example.org/n", "event_types": ["prompt.accepted"]}, ok=201
    ),
    ("GET", "/organisations/{org_id}/webhooks/{endpoint_id}"): Case("object"),
    ("PATCH", "/organisations/{org_id}/webhooks/{endpoint_id}"): Case("object", {"enabled": False}),
    ("POST", "/organisations/{org_id}/webhooks/{endpoint_id}/rotate-secret"): Case(
        "object", {"grace_hours": 1}
    ),
    ("POST", "/organisations/{org_id}/webhooks/{endpoint_id}/test"): Case("object", ok=202),
    ("GET", "/organisations/{org_id}/webhooks/{endpoint_id}/messages"): Case("object"),
    ("GET", "/organisations/{org_id}/webhooks/{endpoint_id}/attempts"): Case("object"),
    ("DELETE", "/organisations/{org_id}/webhooks/{endpoint_id}"): Case("object", ok=204),
    ("GET", "/decisions"): Case("list"),
    ("GET", "/deliveries"): Case("list"),
    ("GET", "/audit"): Case("list"),
    ("GET", "/users"): Case("operator", who="operator"),
    ("POST", "/users/{user_id}/disable"): Case("operator", who="operator"),
    ("POST", "/users/{user_id}/enable"): Case("operator", who="operator"),
}


def admin_routes() -> set[tuple[str, str]]:
    """(method, path) of every admin route, as the app will match them (included routers flattened)."""
    routes = set()
    for route in iter_route_contexts(create_app().routes):
        if route.path and route.path.startswith(API):
            routes |= {(method, route.path.removeprefix(API)) for method in route.methods or ()}
    assert len(routes) > 30, "the admin API is not mounted"
    return routes


def test_every_admin_route_has_a_matrix_entry():
    routes = admin_routes()
    missing = sorted(routes - MATRIX.keys())
    assert not missing, f"add these routes to the tenancy MATRIX: {missing}"
    assert not sorted(MATRIX.keys() - routes), "the MATRIX names routes that no longer exist"


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def call(client, world: World, key: tuple[str, str], side: str, who: str | None, **query: Any):
    method, template = key
    case = MATRIX[key]
    ids = world.ids[side] | {"invite_token": world.invite_token}
    headers = dict(case.headers or {}) | (world.headers[who] if who else {})
    body = _fill(case.body, ids) if case.body is not None else None
    return client.request(method, API + template.format(**ids), json=body, headers=headers, params=query)


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
        ids["test_device_id"] = device.id
    session.commit()
    return world


def test_anonymous_callers_get_401_everywhere_but_login_and_invites(client, world):
    for key, case in MATRIX.items():
        if case.kind == "public":
            continue
        answer = call(client, world, key, "b", None)
        assert answer.status_code == 401, (key, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_user_of_charity_a_gets_404_for_charity_b(client, world):
    b = world.ids["b"]
    for key, case in MATRIX.items():
        if case.kind in {"object", "own"}:
            answer = call(client, world, key, "b", "owner_a")
            assert answer.status_code == 404, (key, answer.text)
        elif case.kind == "list":
            answer = call(client, world, key, "b", "owner_a")
            assert answer.status_code == 200, (key, answer.text)
            seen = {item.get("organisation_id", item.get("id")) for item in answer.json()["items"]}
            assert seen, (key, "the positive side of the list is empty")
            assert b["org_id"] not in seen, (key, seen)
            param, value = case.narrow
            filtered = call(client, world, key, "b", "owner_a", **{param: (b | {"slug": "beta"})[value]})
            assert filtered.status_code == 404 or filtered.json()["total"] == 0, (key, filtered.text)
        elif case.kind == "operator":
            answer = call(client, world, key, "b", "owner_a")
            assert answer.status_code == 403, (key, answer.text)


def test_a_viewer_gets_403_on_every_change(client, world):
    for (method, path), case in MATRIX.items():
        if method == "GET" or case.kind not in {"object", "operator"}:
            continue
        answer = call(client, world, (method, path), "a", "viewer_a")
        assert answer.status_code == 403, ((method, path), answer.text)
        assert answer.json()["code"] == "forbidden"


def test_the_same_requests_succeed_for_those_allowed(client, world):
    for key, case in MATRIX.items():
        answer = call(client, world, key, "a", case.who if case.kind != "public" else None)
        assert answer.status_code == case.ok, (key, answer.text)


UNKNOWN_ID = 999_999_999


def names_an_id(key: tuple[str, str]) -> bool:
    """The route names an object by id: in its path, or in its body (a parent: organisation or site)."""
    body = MATRIX[key].body or {}
    return "{" in key[1] or any(str(value).startswith("{") for value in body.values())


def test_the_operator_gets_404_for_ids_that_name_nothing(client, world):
    """The operator passes every role check, so only a lookup stops an unknown id: without one, a route wrote
    rows for a missing organisation (500) or listed an empty one (200)."""
    world.ids["nowhere"] = dict.fromkeys(world.ids["a"], UNKNOWN_ID)
    checked = []
    for key, case in MATRIX.items():
        if case.kind in {"object", "own", "operator"} and names_an_id(key):
            answer = call(client, world, key, "nowhere", "operator")
            assert answer.status_code == 404, (key, answer.text)
            assert answer.headers["content-type"] == "application/problem+json", key
            assert answer.json()["code"] == "not_found", key
            checked.append(key)
    assert ("POST", "/organisations/{org_id}/test-devices/pairing-codes") in checked
    assert ("GET", "/organisations/{org_id}/test-devices") in checked
    assert ("POST", "/organisations/{org_id}/simulate") in checked
    assert ("POST", "/sites") in checked  # the organisation in the body


def test_the_operator_gets_404_for_an_object_under_the_wrong_organisation(client, world):
    """An existing organisation in the path and another one's object after it: the object is not there."""
    world.ids["crossed"] = world.ids["b"] | {"org_id": world.ids["a"]["org_id"]}
    crossed = [
        key for key in MATRIX if key[1].startswith("/organisations/{org_id}/") and key[1].count("{") > 1
    ]
    assert len(crossed) >= 6
    for key in crossed:
        answer = call(client, world, key, "crossed", "operator")
        assert answer.status_code == 404, (key, answer.text)
