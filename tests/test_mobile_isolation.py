"""One subscriber's token never reads or changes another's data, on every /mobile/v1 route.

The routes come from the app itself (its OpenAPI document, which every /mobile/v1 route is part of): a new
route without an entry in CASES (or PUBLIC) fails `test_every_mobile_route_has_an_isolation_case`, so nobody
can add one without saying how it is isolated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.campaigns.models import PairedDevice, PairingCode
from server.core.config import Settings
from server.core.security import hash_token
from server.prompts.models import PromptResponse
from server.sites.models import Site
from server.subscribers.models import Exclusion, PushChannel
from tests.conftest import TEST_SECRET, Clock
from tests.delivery_world import every_push_service
from tests.test_mobile_me import web_push
from tests.world import Charity, Phone, enrol, event, make_charity, opt_in

PUBLIC = {
    ("GET", "/mobile/v1/capabilities"),
    ("POST", "/mobile/v1/optin"),
    ("GET", "/mobile/v1/consent"),
    ("GET", "/mobile/v1/consent/{version}"),
    ("GET", "/mobile/v1/privacy"),
}


def mobile_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(environment="test", secret_key=TEST_SECRET, database_url="sqlite://"))
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/mobile/v1")
        for method in operations
    }


ROUTES = sorted(mobile_routes())


@dataclass
class World:
    """A has a prompt, a response, a push channel, an exclusion and changed preferences; B is a stranger."""

    client: TestClient
    session: Session
    charity: Charity
    a: Phone
    b: Phone
    decision_id: int
    channel_id: int
    channel_endpoint: str
    exclusion_id: int
    a_subscriber_id: str

    def count(self, model: type, **where: object) -> int:
        self.session.expire_all()
        query = select(func.count()).select_from(model).filter_by(**where)
        return self.session.scalar(query) or 0


@pytest.fixture
def client(settings, clock, tmp_path):
    """Every push service configured, so that phones may register channels of each kind."""
    with TestClient(create_app(every_push_service(settings, tmp_path), clock=clock)) as client:
        yield client


@pytest.fixture
def world(client, session, clock: Clock) -> World:
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    a, b = opt_in(client, language="de"), opt_in(client, language="de")
    # A prompt needs a dwell of at least 15 s (DESIGN.md): enter, then still there 20 s later.
    walk = [event("evt-iso-0001", a, clock()), event("evt-iso-0002", a, clock(), kind="dwell", dwell=20)]
    client.post("/gateway/v1/events", json={"events": walk}, headers=gateway)
    decision_id = client.get("/mobile/v1/me/prompts", headers=a.headers).json()["prompts"][0]["id"]
    client.post(f"/mobile/v1/me/prompts/{decision_id}/responses", json={"kind": "opened"}, headers=a.headers)
    subscription = web_push("https://push.example.net/wpush/v2/a-only")
    channel_id = client.post("/mobile/v1/me/push-channels", json=subscription, headers=a.headers).json()["id"]
    exclusion = client.post(
        "/mobile/v1/me/exclusions", json={"organisation_id": charity.organisation_id}, headers=a.headers
    )
    client.patch(
        "/mobile/v1/me/preferences", json={"language": "en", "caps": {"per_week": 1}}, headers=a.headers
    )
    a_id = client.get("/mobile/v1/me/export", headers=a.headers).json()["profile"]["id"]
    return World(
        client,
        session,
        charity,
        a,
        b,
        decision_id,
        channel_id,
        str(subscription["endpoint"]),
        exclusion.json()["id"],
        a_id,
    )


def a_is_untouched(w: World) -> None:
    prefs = w.client.get("/mobile/v1/me/preferences", headers=w.a.headers).json()
    assert (prefs["language"], prefs["caps"]["per_week"], prefs["scopes"]) == (
        "en",
        1,
        ["donation", "volunteer"],
    )
    assert [
        p["id"] for p in w.client.get("/mobile/v1/me/prompts", headers=w.a.headers).json()["prompts"]
    ] == [w.decision_id]
    assert w.count(PushChannel, id=w.channel_id) == 1
    assert w.count(Exclusion, id=w.exclusion_id) == 1
    assert w.count(PromptResponse, decision_id=w.decision_id) == 1


def none_of_a_in(w: World, text: str) -> None:
    for secret in (w.a_subscriber_id, w.a_subscriber_id.replace("-", ""), w.channel_endpoint):
        assert secret not in text


# B's attempt on each route, with A's ids where the route takes one. Each returns B's answer.


def inbox(w: World) -> None:
    answer = w.client.get("/mobile/v1/me/prompts", headers=w.b.headers)
    assert answer.json() == {"prompts": []}


def get_preferences(w: World) -> None:
    answer = w.client.get("/mobile/v1/me/preferences", headers=w.b.headers)
    assert (answer.json()["language"], answer.json()["caps"]["per_week"]) == ("de", None)


def patch_preferences(w: World) -> None:
    body = {"language": "de", "scopes": ["volunteer"], "caps": {"per_day": 1}}
    assert w.client.patch("/mobile/v1/me/preferences", json=body, headers=w.b.headers).status_code == 200


def list_exclusions(w: World) -> None:
    assert w.client.get("/mobile/v1/me/exclusions", headers=w.b.headers).json() == {"exclusions": []}


def add_exclusion(w: World) -> None:
    body = {"organisation_id": w.charity.organisation_id}
    answer = w.client.post("/mobile/v1/me/exclusions", json=body, headers=w.b.headers)
    assert answer.status_code == 201  # B's own, new: not A's existing one
    assert answer.json()["id"] != w.exclusion_id


def remove_exclusion(w: World) -> None:
    answer = w.client.delete(f"/mobile/v1/me/exclusions/{w.exclusion_id}", headers=w.b.headers)
    assert answer.status_code == 404


def list_channels(w: World) -> None:
    answer = w.client.get("/mobile/v1/me/push-channels", headers=w.b.headers)
    assert answer.json() == {"channels": []}


def add_channel(w: World) -> None:
    body = web_push(w.channel_endpoint)  # even A's very endpoint makes a channel of B's own
    answer = w.client.post("/mobile/v1/me/push-channels", json=body, headers=w.b.headers)
    assert answer.status_code == 201
    assert answer.json()["id"] != w.channel_id


def remove_channel(w: World) -> None:
    answer = w.client.delete(f"/mobile/v1/me/push-channels/{w.channel_id}", headers=w.b.headers)
    assert answer.status_code == 404


def respond(w: World) -> None:
    for kind in ("opened", "dismissed", "not_here", "not_this_org"):
        url = f"/mobile/v1/me/prompts/{w.decision_id}/responses"
        answer = w.client.post(url, json={"kind": kind}, headers=w.b.headers)
        assert answer.status_code == 404
        none_of_a_in(w, answer.text)


def export(w: World) -> None:
    answer = w.client.get("/mobile/v1/me/export", headers=w.b.headers)
    assert answer.status_code == 200
    none_of_a_in(w, answer.text)
    body = answer.json()
    assert body["decisions"] == body["responses"] == body["push_channels"] == body["exclusions"] == []


def sighting(w: World) -> None:
    site = w.session.get(Site, w.charity.site_id)
    site.ibeacon_uuid, site.ibeacon_major = "f7826da6-4fa2-4e98-8024-bc5b71e0893e", 7
    w.session.commit()
    body = {
        "id": "sgt-shared-0001",  # an idempotency key is per phone: A's use of it is no concern of B's
        "kind": "dwell",
        "dwell_s": 20,  # long enough to be prompted
        "uuid": site.ibeacon_uuid,
        "major": 7,
        "observed_at": w.client.app.state.runtime.clock().isoformat(),
    }
    assert w.client.post("/mobile/v1/sightings", json=body, headers=w.a.headers).status_code == 200
    answer = w.client.post("/mobile/v1/sightings", json=body, headers=w.b.headers)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["stored"], answer.json()["duplicate"]) == (True, False)
    assert answer.json()["prompt"]["id"] != w.decision_id
    none_of_a_in(w, answer.text)


def pair_test_device(w: World) -> None:
    # A's pairing code pairs A; B entering the same (now used) code pairs nobody, and B is no test device.
    code, now = "A2B3C4D5E6F7", w.client.app.state.runtime.clock()
    w.session.add(
        PairingCode(
            organisation_id=w.charity.organisation_id,
            code_hash=hash_token(code),
            created_at=now,
            expires_at=now + timedelta(minutes=15),
        )
    )
    w.session.commit()
    body = {"code": code, "label": "A's phone"}
    assert w.client.post("/mobile/v1/me/test-device", json=body, headers=w.a.headers).status_code == 201
    answer = w.client.post("/mobile/v1/me/test-device", json=body, headers=w.b.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_pairing_code")
    none_of_a_in(w, answer.text)
    assert w.count(PairedDevice) == 1


def erase(w: World) -> None:
    assert w.client.delete("/mobile/v1/me", headers=w.b.headers).status_code == 204
    assert w.client.get("/mobile/v1/me/preferences", headers=w.b.headers).status_code == 401


CASES: dict[tuple[str, str], Callable[[World], None]] = {
    ("GET", "/mobile/v1/me/prompts"): inbox,
    ("GET", "/mobile/v1/me/preferences"): get_preferences,
    ("PATCH", "/mobile/v1/me/preferences"): patch_preferences,
    ("GET", "/mobile/v1/me/exclusions"): list_exclusions,
    ("POST", "/mobile/v1/me/exclusions"): add_exclusion,
    ("DELETE", "/mobile/v1/me/exclusions/{exclusion_id}"): remove_exclusion,
    ("GET", "/mobile/v1/me/push-channels"): list_channels,
    ("POST", "/mobile/v1/me/push-channels"): add_channel,
    ("DELETE", "/mobile/v1/me/push-channels/{channel_id}"): remove_channel,
    ("POST", "/mobile/v1/me/prompts/{decision_id}/responses"): respond,
    ("GET", "/mobile/v1/me/export"): export,
    ("DELETE", "/mobile/v1/me"): erase,
    ("POST", "/mobile/v1/sightings"): sighting,
    ("POST", "/mobile/v1/me/test-device"): pair_test_device,
}


def test_every_mobile_route_has_an_isolation_case():
    missing = set(ROUTES) - set(CASES) - PUBLIC
    assert not missing, f"add {sorted(missing)} to CASES (or PUBLIC) in this file"
    assert PUBLIC <= set(ROUTES)


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r not in PUBLIC])
def test_anonymous_and_forged_tokens_get_401(client, method, path):
    url = re.sub(r"\{[^}]+\}", "1", path)
    for headers in ({}, {"Authorization": "Bearer ndv_forged"}):
        answer = client.request(method, url, headers=headers, json={})
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_the_public_routes_answer_without_a_token(client, method, path):
    url = path.replace("{version}", "2026-11")
    body = {"consent_text_version": "2026-11", "scopes": ["volunteer"]} if method == "POST" else None
    assert client.request(method, url, json=body).status_code in (200, 201)


@pytest.mark.parametrize("route", sorted(CASES))
def test_b_cannot_read_or_change_what_is_a_s(world: World, route):
    if route not in ROUTES:
        pytest.fail(f"{route} is not a route of this app; drop the case if the route is gone")
    CASES[route](world)
    a_is_untouched(world)
