"""The subscriber's own part of /mobile/v1: preferences, exclusions, push channels, responses to prompts."""

from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.app import create_app
from server.campaigns.models import CampaignSite
from server.core.const import DEFAULT_MAX_PER_DAY, DEFAULT_MAX_PER_MONTH, DEFAULT_MAX_PER_WEEK
from server.prompts.models import PromptDecision, PromptResponse
from server.sites.models import Site
from server.sites.service import issue_enrolment_code
from server.subscribers.consent import CURRENT_CONSENT_VERSION
from server.subscribers.models import ConsentRecord, Exclusion
from tests.conftest import Clock
from tests.delivery_world import every_push_service
from tests.world import Charity, Phone, enrol, event, make_charity, opt_in


@pytest.fixture
def client(settings, clock, tmp_path):
    """Every push service configured, so that phones may register channels of each kind."""
    with TestClient(create_app(every_push_service(settings, tmp_path), clock=clock)) as client:
        yield client


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def web_push(endpoint: str = "https://push.example.net/wpush/v2/abc123") -> dict[str, object]:
    """A browser's PushSubscription with a real P-256 key, as `subscription.toJSON()` gives it."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {
        "kind": "webpush",
        "endpoint": endpoint,
        "keys": {"p256dh": b64url(p256dh), "auth": b64url(secrets.token_bytes(16))},
    }


def reasons(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(PromptDecision.reason).order_by(PromptDecision.id)))


def walk_past(client: TestClient, gateway: dict[str, str], phone: Phone, clock: Clock, key: str) -> int:
    """A new visit (well after the last one) reported by the gateway; returns the number of prompts."""
    clock.advance(900)
    answer = client.post(
        "/gateway/v1/events", json={"events": [event(key, phone, clock(), "dwell", 20)]}, headers=gateway
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["prompts"])


def prompted(
    client: TestClient, session: Session, clock: Clock
) -> tuple[Charity, dict[str, str], Phone, int]:
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    assert walk_past(client, gateway, phone, clock, "evt-first-01") == 1
    decision_id = client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"][0]["id"]
    return charity, gateway, phone, decision_id


# --- Preferences ----------------------------------------------------------------------------------------


def test_preferences_round_trip_and_clearing(client):
    phone = opt_in(client, ["volunteer"], language="de")
    start = client.get("/mobile/v1/me/preferences", headers=phone.headers)
    assert start.status_code == 200
    assert start.json() == {
        "scopes": ["volunteer"],
        "language": "de",
        "quiet_hours": None,
        "caps": {"per_day": None, "per_week": None, "per_month": None},
        "platform_caps": {
            "per_day": DEFAULT_MAX_PER_DAY,
            "per_week": DEFAULT_MAX_PER_WEEK,
            "per_month": DEFAULT_MAX_PER_MONTH,
        },
    }
    change = {"language": "en", "quiet_hours": {"start": "22:30", "end": "07:00"}, "caps": {"per_week": 1}}
    patched = client.patch("/mobile/v1/me/preferences", json=change, headers=phone.headers)
    assert patched.status_code == 200, patched.text
    again = client.get("/mobile/v1/me/preferences", headers=phone.headers).json()
    assert again == patched.json()
    assert again["language"] == "en"
    assert again["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert again["caps"] == {"per_day": None, "per_week": 1, "per_month": None}
    assert again["scopes"] == ["volunteer"]  # not sent, not changed

    cleared = client.patch(
        "/mobile/v1/me/preferences", json={"quiet_hours": None, "caps": None}, headers=phone.headers
    )
    assert cleared.json()["quiet_hours"] is None
    assert cleared.json()["caps"] == {"per_day": None, "per_week": None, "per_month": None}
    assert cleared.json()["language"] == "en"


def test_a_scope_change_is_recorded_as_a_new_consent(client, session, clock: Clock):
    phone = opt_in(client, ["volunteer"])
    clock.advance(60)
    answer = client.patch(
        "/mobile/v1/me/preferences", json={"scopes": ["donation", "volunteer"]}, headers=phone.headers
    )
    assert answer.json()["scopes"] == ["donation", "volunteer"]
    records = session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)).all()
    assert [(r.scopes, r.text_version) for r in records] == [
        (["volunteer"], CURRENT_CONSENT_VERSION),
        (["donation", "volunteer"], CURRENT_CONSENT_VERSION),
    ]
    assert records[0].withdrawn_at == clock()  # superseded at the moment of the change
    assert records[1].given_at == clock()
    assert records[1].withdrawn_at is None
    assert records[0].subscriber_id == records[1].subscriber_id

    # The same scopes again, or only a language change, is no new consent.
    client.patch(
        "/mobile/v1/me/preferences", json={"scopes": ["volunteer", "donation"]}, headers=phone.headers
    )
    client.patch("/mobile/v1/me/preferences", json={"language": "en"}, headers=phone.headers)
    session.expire_all()
    assert len(session.scalars(select(ConsentRecord)).all()) == 2


def test_narrowing_the_scopes_stops_those_prompts(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock(), kind="volunteer").enrolment_code)
    phone = opt_in(client, ["volunteer", "donation"])
    client.patch("/mobile/v1/me/preferences", json={"scopes": ["donation"]}, headers=phone.headers)
    assert walk_past(client, gateway, phone, clock, "evt-scope-01") == 0
    assert reasons(session) == ["scope_not_consented"]


def test_own_quiet_hours_hold_in_the_sites_local_time(client, session, clock: Clock):
    gateway = enrol(client, make_charity(session, clock()).enrolment_code)
    phone = opt_in(client)
    quiet = {"quiet_hours": {"start": "11:45", "end": "13:00"}}  # the walk past is at 12:15 in Berlin
    client.patch("/mobile/v1/me/preferences", json=quiet, headers=phone.headers)
    assert walk_past(client, gateway, phone, clock, "evt-quiet-01") == 0
    clock.advance(3600)  # 13:30 in Berlin
    assert walk_past(client, gateway, phone, clock, "evt-quiet-02") == 1
    assert reasons(session) == ["person_quiet_hours", "prompted"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"caps": {"per_day": DEFAULT_MAX_PER_DAY + 1}}, "caps.per_day", "platform maximum of 1"),
        ({"caps": {"per_week": DEFAULT_MAX_PER_WEEK + 1}}, "caps.per_week", "only be stricter"),
        ({"caps": {"per_month": 99}}, "caps.per_month", "platform maximum of 4 prompts per 30 days"),
        ({"caps": {"per_week": 0}}, "caps.per_week", "greater than or equal to 1"),
        ({"caps": {"per_year": 1}}, "caps.per_year", "Extra inputs"),
        ({"scopes": []}, "scopes", "at least 1"),
        ({"scopes": ["ads"]}, "scopes[0]", "volunteer"),
        ({"language": "fr"}, "language", "'de' or 'en'"),
        ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours.start", "pattern"),
        ({"quiet_hours": {"start": "7:00", "end": "08:00"}}, "quiet_hours.start", "pattern"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours.end", "Field required"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours", "equal"),
        ({"name": "Erika"}, "name", "Extra inputs"),
    ],
)
def test_invalid_preferences_are_422_naming_the_field_and_why(client, body, field, words):
    phone = opt_in(client)
    answer = client.patch("/mobile/v1/me/preferences", json=body, headers=phone.headers)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in problem["detail"]
    messages = [e["message"] for e in problem["errors"] if e["field"] == field]
    assert messages, problem
    assert any(words in m for m in messages), messages
    assert client.get("/mobile/v1/me/preferences", headers=phone.headers).json()["caps"]["per_day"] is None


def test_an_unknown_consent_text_version_is_refused(client):
    phone = opt_in(client)
    body = {"scopes": ["donation"], "consent_text_version": "1999-01"}
    answer = client.patch("/mobile/v1/me/preferences", json=body, headers=phone.headers)
    assert answer.status_code == 422
    assert answer.json()["code"] == "unknown_consent_version"
    assert client.get("/mobile/v1/me/preferences", headers=phone.headers).json()["scopes"] == [
        "donation",
        "volunteer",
    ]


# --- Exclusions -----------------------------------------------------------------------------------------


def test_exclusions_are_idempotent_listed_and_removable(client, session, clock: Clock):
    charity = make_charity(session, clock())
    phone = opt_in(client)
    first = client.post("/mobile/v1/me/exclusions", json={"site_id": charity.site_id}, headers=phone.headers)
    assert first.status_code == 201, first.text
    assert first.json()["name"] == "hospiz door"
    again = client.post("/mobile/v1/me/exclusions", json={"site_id": charity.site_id}, headers=phone.headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    org = client.post(
        "/mobile/v1/me/exclusions", json={"organisation_id": charity.organisation_id}, headers=phone.headers
    )
    assert org.status_code == 201
    assert org.json()["name"] == "hospiz e.V."
    listed = client.get("/mobile/v1/me/exclusions", headers=phone.headers).json()["exclusions"]
    assert [(e["site_id"], e["organisation_id"]) for e in listed] == [
        (charity.site_id, None),
        (None, charity.organisation_id),
    ]
    gone = client.delete(f"/mobile/v1/me/exclusions/{first.json()['id']}", headers=phone.headers)
    assert gone.status_code == 204
    assert (
        client.delete(f"/mobile/v1/me/exclusions/{first.json()['id']}", headers=phone.headers).status_code
        == 404
    )
    assert len(client.get("/mobile/v1/me/exclusions", headers=phone.headers).json()["exclusions"]) == 1


def test_excluding_what_does_not_exist_is_404_and_the_body_must_name_exactly_one(
    client, session, clock: Clock
):
    charity = make_charity(session, clock())
    phone = opt_in(client)
    for body in ({"site_id": charity.site_id + 100}, {"organisation_id": charity.organisation_id + 100}):
        answer = client.post("/mobile/v1/me/exclusions", json=body, headers=phone.headers)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "not_found"
    both = {"site_id": charity.site_id, "organisation_id": charity.organisation_id}
    for body in ({}, both, {"site_id": "door"}):
        assert client.post("/mobile/v1/me/exclusions", json=body, headers=phone.headers).status_code == 422
    assert session.scalars(select(Exclusion)).all() == []


def test_an_excluded_site_is_never_prompted(client, session, clock: Clock):
    charity = make_charity(session, clock())
    gateway = enrol(client, charity.enrolment_code)
    phone = opt_in(client)
    client.post("/mobile/v1/me/exclusions", json={"site_id": charity.site_id}, headers=phone.headers)
    assert walk_past(client, gateway, phone, clock, "evt-excl-01") == 0
    assert reasons(session) == ["not_here"]


# --- Push channels --------------------------------------------------------------------------------------


def test_push_channels_of_each_kind_idempotent_and_deletable(client):
    phone = opt_in(client)
    subscription = web_push()
    first = client.post("/mobile/v1/me/push-channels", json=subscription, headers=phone.headers)
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "webpush"
    assert first.json()["endpoint"] == subscription["endpoint"]
    renewed = web_push(str(subscription["endpoint"]))  # same endpoint, new keys: the same channel
    again = client.post("/mobile/v1/me/push-channels", json=renewed, headers=phone.headers)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])

    fcm = {"kind": "fcm", "token": "cXk1:APA91b" + "x" * 140}
    apns = {"kind": "apns", "token": secrets.token_hex(32), "environment": "sandbox"}
    assert client.post("/mobile/v1/me/push-channels", json=fcm, headers=phone.headers).status_code == 201
    made = client.post("/mobile/v1/me/push-channels", json=apns, headers=phone.headers)
    assert made.status_code == 201
    assert made.json()["environment"] == "sandbox"

    listed = client.get("/mobile/v1/me/push-channels", headers=phone.headers).json()["channels"]
    assert [c["kind"] for c in listed] == ["webpush", "fcm", "apns"]
    assert (
        client.delete(f"/mobile/v1/me/push-channels/{first.json()['id']}", headers=phone.headers).status_code
        == 204
    )
    listed = client.get("/mobile/v1/me/push-channels", headers=phone.headers).json()["channels"]
    assert [c["kind"] for c in listed] == ["fcm", "apns"]
    assert (
        client.delete(f"/mobile/v1/me/push-channels/{first.json()['id']}", headers=phone.headers).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.net/x"}, "webpush.endpoint"),
        ({"endpoint": "https://" + "a" * 2000 + ".example"}, "webpush.endpoint"),
        ({"keys": {"p256dh": b64url(b"\x04" + b"k" * 30), "auth": b64url(b"a" * 16)}}, "webpush.keys.p256dh"),
        ({"keys": {"p256dh": "not base64!", "auth": b64url(b"a" * 16)}}, "webpush.keys.p256dh"),
        ({"kind": "carrier-pigeon"}, "body"),
    ],
)
def test_malformed_web_push_subscriptions_are_422_naming_the_field(client, change, field):
    phone = opt_in(client)
    answer = client.post("/mobile/v1/me/push-channels", json=web_push() | change, headers=phone.headers)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert client.get("/mobile/v1/me/push-channels", headers=phone.headers).json() == {"channels": []}


def test_short_auth_secrets_and_bad_tokens_are_422(client):
    phone = opt_in(client)
    short_auth = web_push()
    short_auth["keys"] = dict(short_auth["keys"]) | {"auth": b64url(b"a" * 8)}  # type: ignore[arg-type]
    bad = [
        short_auth,
        {"kind": "fcm", "token": "short"},
        {"kind": "apns", "token": "zz" * 32, "environment": "sandbox"},
        {"kind": "apns", "token": secrets.token_hex(32), "environment": "staging"},
        {"kind": "apns", "token": secrets.token_hex(32)},
    ]
    for body in bad:
        answer = client.post("/mobile/v1/me/push-channels", json=body, headers=phone.headers)
        assert answer.status_code == 422, body


# --- Responses ------------------------------------------------------------------------------------------


def test_responses_are_recorded_once_per_kind(client, session, clock: Clock):
    _, _, phone, decision_id = prompted(client, session, clock)
    url = f"/mobile/v1/me/prompts/{decision_id}/responses"
    opened = client.post(url, json={"kind": "opened"}, headers=phone.headers)
    assert opened.status_code == 201, opened.text
    assert opened.json()["exclusion_id"] is None
    assert (
        client.post(url, json={"kind": "opened"}, headers=phone.headers).json()["id"] == opened.json()["id"]
    )
    assert client.post(url, json={"kind": "accepted"}, headers=phone.headers).status_code == 201
    assert client.post(url, json={"kind": "loved_it"}, headers=phone.headers).status_code == 422
    session.expire_all()
    assert sorted(session.scalars(select(PromptResponse.kind))) == ["accepted", "opened"]
    for missing, status in ((999999, 404), (2**63, 422), (0, 422)):
        url = f"/mobile/v1/me/prompts/{missing}/responses"
        assert client.post(url, json={"kind": "opened"}, headers=phone.headers).status_code == status


def test_not_here_suppresses_the_next_sighting_at_that_site(client, session, clock: Clock):
    charity, gateway, phone, decision_id = prompted(client, session, clock)
    url = f"/mobile/v1/me/prompts/{decision_id}/responses"
    answer = client.post(url, json={"kind": "not_here"}, headers=phone.headers)
    assert answer.status_code == 201
    exclusions = client.get("/mobile/v1/me/exclusions", headers=phone.headers).json()["exclusions"]
    assert [(e["id"], e["site_id"]) for e in exclusions] == [(answer.json()["exclusion_id"], charity.site_id)]

    clock.advance(24 * 3600)  # another day: no daily cap in the way, only the person's word
    assert walk_past(client, gateway, phone, clock, "evt-after-01") == 0
    assert reasons(session) == ["prompted", "not_here"]


def test_not_this_org_suppresses_every_site_of_that_charity(client, session, clock: Clock):
    charity, gateway, phone, decision_id = prompted(client, session, clock)
    branch = Site(organisation_id=charity.organisation_id, name="hospiz branch", timezone="Europe/Berlin")
    session.add(branch)
    session.flush()
    session.add(CampaignSite(campaign_id=charity.campaign_id, site_id=branch.id))
    code = issue_enrolment_code(session, branch, "window", clock()).code
    session.commit()
    at_branch = enrol(client, code)

    url = f"/mobile/v1/me/prompts/{decision_id}/responses"
    answer = client.post(url, json={"kind": "not_this_org"}, headers=phone.headers)
    assert answer.status_code == 201
    exclusions = client.get("/mobile/v1/me/exclusions", headers=phone.headers).json()["exclusions"]
    assert [e["organisation_id"] for e in exclusions] == [charity.organisation_id]

    clock.advance(24 * 3600)
    assert walk_past(client, at_branch, phone, clock, "evt-branch-01") == 0
    assert walk_past(client, gateway, phone, clock, "evt-door-01") == 0
    assert reasons(session) == ["prompted", "not_this_org", "not_this_org"]

    # Another charity is still welcome.
    other = enrol(client, make_charity(session, clock(), slug="tafel").enrolment_code)
    assert walk_past(client, other, phone, clock, "evt-tafel-01") == 1
