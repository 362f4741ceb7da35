"""Registering push channels: only of a kind this server can push to (listed at /mobile/v1/capabilities),
and, unless the operator allows private push hosts, only Web Push endpoints on the public internet."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr

from server.app import create_app
from server.delivery.jwt import b64url
from tests.delivery_world import every_push_service
from tests.test_mobile_me import web_push
from tests.world import opt_in

FCM = {"kind": "fcm", "token": "cXk1:APA91b" + "x" * 140}


def apns() -> dict[str, str]:
    return {"kind": "apns", "token": secrets.token_hex(32), "environment": "production"}


def channels(client: TestClient, headers: dict[str, str]) -> list[dict]:
    return client.get("/mobile/v1/me/push-channels", headers=headers).json()["channels"]


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def web_push_only(settings, vapid_key):
    pem = vapid_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return settings.model_copy(
        update={"vapid_private_key": SecretStr(pem), "vapid_subject": "mailto:push-ops@nahbar.example.org"}
    )


def test_a_server_without_push_refuses_every_channel_and_says_so(client):
    assert client.get("/mobile/v1/capabilities").json() == {
        "push_channels": [],
        "webpush_public_key": None,
        "languages": ["de", "en"],
    }
    phone = opt_in(client)
    for body, name in ((web_push(), "Web Push"), (FCM, "FCM"), (apns(), "APNs")):
        answer = client.post("/mobile/v1/me/push-channels", json=body, headers=phone.headers)
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "channel_not_enabled"
        assert problem["detail"].startswith(f"{name} ")
        assert "is not enabled on this server" in problem["detail"]
        assert "GET /mobile/v1/me/prompts" in problem["detail"]
        assert problem["enabled"] == []
    assert channels(client, phone.headers) == []


def test_only_the_configured_kinds_are_offered_and_taken(web_push_only, vapid_key, clock):
    with TestClient(create_app(web_push_only, clock=clock)) as client:
        offer = client.get("/mobile/v1/capabilities").json()
        public = vapid_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        assert offer["push_channels"] == ["webpush"]
        assert offer["webpush_public_key"] == b64url(public)  # what PushManager.subscribe() needs
        phone = opt_in(client)
        made = client.post("/mobile/v1/me/push-channels", json=web_push(), headers=phone.headers)
        assert made.status_code == 201, made.text
        refused = client.post("/mobile/v1/me/push-channels", json=FCM, headers=phone.headers)
        assert (refused.status_code, refused.json()["code"]) == (409, "channel_not_enabled")
        assert "use Web Push, or the inbox" in refused.json()["detail"]
        assert refused.json()["enabled"] == ["webpush"]
        assert [c["kind"] for c in channels(client, phone.headers)] == ["webpush"]


def test_every_configured_kind_is_listed_and_taken(settings, clock, tmp_path):
    with TestClient(create_app(every_push_service(settings, tmp_path), clock=clock)) as client:
        assert client.get("/mobile/v1/capabilities").json()["push_channels"] == ["webpush", "fcm", "apns"]
        phone = opt_in(client)
        for body in (FCM, apns()):
            answer = client.post("/mobile/v1/me/push-channels", json=body, headers=phone.headers)
            assert answer.status_code == 201, answer.text


NOT_PUBLIC = [
    ("https://127.0.0.1:8443/push/1", "127.0.0.1 is a loopback address"),
    ("https://[::1]/push/1", "::1 is a loopback address"),
    ("https://10.1.2.3/push/1", "10.1.2.3 is a private address"),
    ("https://192.168.178.1/push/1", "192.168.178.1 is a private address"),
    ("https://172.16.0.9/push/1", "172.16.0.9 is a private address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://[fe80::1]/push/1", "fe80::1 is a link-local address"),
    ("https://[fd12:3456::1]/push/1", "fd12:3456::1 is a unique-local address"),
    ("https://[::ffff:127.0.0.1]/push/1", "::ffff:127.0.0.1 is a loopback address"),
    ("https://0.0.0.0/push/1", "0.0.0.0 is the unspecified address"),
    ("https://224.0.0.251/push/1", "224.0.0.251 is a multicast address"),
    ("https://100.64.0.1/push/1", "100.64.0.1 is an address not routed on the internet"),
    ("https://127.1/push/1", "127.1 is a loopback address"),
    ("https://2130706433/push/1", "2130706433 is a loopback address"),
    ("https://localhost:8443/push/1", "localhost is a local name"),
    ("https://push.localhost/push/1", "push.localhost is a local name"),
    ("https://pushbox.local/push/1", "pushbox.local is a local name"),
    ("https://metadata.google.internal/push/1", "metadata.google.internal is a local name"),
    ("https://pushbox/push/1", "pushbox is a name without a domain"),
]


@pytest.mark.parametrize(("endpoint", "reason"), NOT_PUBLIC)
def test_web_push_endpoints_off_the_internet_are_refused(web_push_only, clock, endpoint, reason):
    strict = web_push_only.model_copy(update={"allow_private_push_hosts": False})
    with TestClient(create_app(strict, clock=clock)) as client:
        phone = opt_in(client)
        answer = client.post("/mobile/v1/me/push-channels", json=web_push(endpoint), headers=phone.headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "push_endpoint_not_public"
        assert "must be a public internet address" in problem["detail"]
        assert reason in problem["detail"]
        assert channels(client, phone.headers) == []


def test_a_public_push_service_is_taken_and_private_ones_when_the_operator_allows(web_push_only, clock):
    strict = web_push_only.model_copy(update={"allow_private_push_hosts": False})
    with TestClient(create_app(strict, clock=clock)) as client:
        phone = opt_in(client)
        public = web_push("https://updates.push.services.mozilla.com/wpush/v2/gAAAA")
        assert (
            client.post("/mobile/v1/me/push-channels", json=public, headers=phone.headers).status_code == 201
        )
    assert web_push_only.allow_private_push_hosts  # the tests' settings, as the demo's, allow them
    with TestClient(create_app(web_push_only, clock=clock)) as client:
        phone = opt_in(client)
        for endpoint, _reason in NOT_PUBLIC[:8]:  # at most 10 channels a phone
            answer = client.post(
                "/mobile/v1/me/push-channels", json=web_push(endpoint), headers=phone.headers
            )
            assert answer.status_code == 201, (endpoint, answer.text)
