"""Logs carry no personal data: a person's whole way through `nahbar serve` over real HTTP (opt-in, a
gateway's sighting, the prompt pushed, its landing page, answers, test-device pairing, an admin's explain and
invite, export, withdrawal), every line the server logs captured at DEBUG, and not one holding a token, an
EID, the identity key, a push endpoint, a subscriber id, an e-mail address or the client's address."""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.app import create_app
from server.core.const import SESSION_COOKIE
from server.core.db import make_engine
from server.core.security import pseudonym
from server.demo.seed import daytime_zone
from tests.admin_world import API, PASSWORD, add_user
from tests.conftest import TEST_SECRET
from tests.delivery_world import Browser, Peer, add_channel, subscriber_of
from tests.served import Served, records, sqlite_copy
from tests.test_mobile_me import web_push
from tests.world import Phone, event, make_charity

CLIENT_ADDRESS = "127.0.0.3"  # the person's phone; the server listens on 127.0.0.2, the push service on .1
SUBJECT = "mailto:push-ops@nahbar.example.org"


def _b64(raw: bytes) -> list[str]:
    return [
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(raw).decode().rstrip("="),
    ]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_no_personal_data_reaches_the_logs_on_a_whole_way_through(tmp_path, sqlite_template):
    url = sqlite_copy(sqlite_template, tmp_path)
    now = datetime.now(UTC)
    engine = make_engine(url)
    session = Session(engine, expire_on_commit=False)
    # Daytime at the site, whatever the hour the test runs at: quiet hours would suppress the prompt.
    charity = make_charity(session, now, timezone=daytime_zone(now))
    operator_email, invitee_email = "ops@hospiz.example.org", "helper@hospiz.example.org"
    add_user(session, operator_email, operator=True)
    session.commit()
    vapid = ec.generate_private_key(ec.SECP256R1())
    pem = vapid.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    peer = Peer()
    secret: dict[str, str] = {"client address": CLIENT_ADDRESS, "operator": operator_email}
    try:
        with (
            Served(
                tmp_path,
                url,
                host="127.0.0.2",
                NAHBAR_LOG_LEVEL="DEBUG",  # everything anything in the server logs
                NAHBAR_VAPID_PRIVATE_KEY=pem,
                NAHBAR_VAPID_SUBJECT=SUBJECT,
                NAHBAR_COOKIE_SECURE="false",  # the admin session cookie over plain http on loopback
                NAHBAR_ALLOW_PRIVATE_PUSH_HOSTS="true",  # the push service is on loopback
            ) as server,
            httpx.Client(
                base_url=server.url, transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
            ) as http,
        ):
            secret["enrolment code"] = charity.enrolment_code
            enrolled = http.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})
            assert enrolled.status_code == 200, enrolled.text
            secret["gateway token"] = enrolled.json()["token"]
            gateway = {"Authorization": f"Bearer {secret['gateway token']}"}
            assert http.get("/gateway/v1/config", headers=gateway).status_code == 200

            body = {"consent_text_version": "2026-11", "scopes": ["volunteer"], "language": "en"}
            opted = http.post("/mobile/v1/optin", json=body)
            assert opted.status_code == 201, opted.text
            data = opted.json()
            secret["device token"] = data["device_token"]
            phone = Phone(
                {"Authorization": f"Bearer {data['device_token']}"},
                bytes.fromhex(data["identity_key"]),
                data["rotation_exponent"],
            )
            secret["identity key"] = data["identity_key"]
            for n, encoded in enumerate(_b64(phone.identity_key)):
                secret[f"identity key b64 {n}"] = encoded
            subscriber = subscriber_of(session, phone)
            secret["subscriber id"] = str(subscriber.id)
            secret["subscriber id hex"] = subscriber.id.hex
            secret["subscriber id prefix"] = subscriber.id.hex[:8]
            secret["pseudonym"] = pseudonym(TEST_SECRET, charity.organisation_id, subscriber.id)

            # Channels through the API (a Web Push one withdrawn again), and one at the local push service.
            listed = web_push(f"https://push.example.net/wpush/v2/{secrets.token_urlsafe(24)}")
            secret["web push endpoint"] = str(listed["endpoint"])
            made = http.post("/mobile/v1/me/push-channels", json=listed, headers=phone.headers)
            assert made.status_code == 201, made.text
            removed = http.delete(f"/mobile/v1/me/push-channels/{made.json()['id']}", headers=phone.headers)
            assert removed.status_code == 204
            secret["fcm token"] = secrets.token_urlsafe(48)
            fcm = {"kind": "fcm", "token": secret["fcm token"]}
            # FCM and APNs are not configured here: the refusal (409) must not log the token either.
            assert (
                http.post("/mobile/v1/me/push-channels", json=fcm, headers=phone.headers).status_code == 409
            )
            secret["apns token"] = secrets.token_hex(32)
            apns = {"kind": "apns", "token": secret["apns token"], "environment": "sandbox"}
            assert (
                http.post("/mobile/v1/me/push-channels", json=apns, headers=phone.headers).status_code == 409
            )
            secret["pushed endpoint path"] = f"/wpush/{secrets.token_urlsafe(24)}"
            secret["pushed endpoint"] = peer.url + secret["pushed endpoint path"]
            add_channel(session, subscriber.id, "webpush", secret["pushed endpoint"], **Browser.new().keys())

            # The gateway sees the phone walk up and stay: a prompt, pushed to the local push service.
            seen = datetime.now(UTC)
            batch = {
                "events": [
                    event("privacy-enter-0001", phone, seen - timedelta(seconds=20)),
                    event("privacy-dwell-0002", phone, seen, "dwell", 20),
                ]
            }
            for n, item in enumerate(batch["events"]):
                secret[f"eid {n}"] = str(item["eid"])
                secret[f"eid {n} upper"] = str(item["eid"]).upper()
            sighted = http.post("/gateway/v1/events", json=batch, headers=gateway)
            assert sighted.status_code == 200, sighted.text
            assert sighted.json()["prompts"] == 1, sighted.text
            peer.wait_for(1)

            inbox = http.get("/mobile/v1/me/prompts", params={"limit": 5}, headers=phone.headers).json()
            [prompt] = inbox["prompts"]
            landing = urlsplit(prompt["landing_url"]).path
            secret["landing token"] = landing.removeprefix("/p/")
            answered = http.post(
                f"/mobile/v1/me/prompts/{prompt['id']}/responses",
                json={"kind": "opened"},
                headers=phone.headers,
            )
            assert answered.status_code == 201, answered.text
            assert http.get(landing, params={"utm_source": "push"}).status_code == 200
            assert http.get(f"{landing}/go").status_code == 303
            same_site = {"Sec-Fetch-Site": "same-origin"}
            assert http.post(landing, data={"kind": "dismissed"}, headers=same_site).status_code == 200
            assert http.get(f"{landing}/more").status_code == 404  # matches no route

            # An admin explains the person's decision, invites a helper, and pairs the phone as a test device.
            signed_in = http.post(f"{API}/auth/login", json={"email": operator_email, "password": PASSWORD})
            assert signed_in.status_code == 200, signed_in.text
            secret["session cookie"] = signed_in.cookies[SESSION_COOKIE]
            secret["csrf token"] = signed_in.json()["csrf_token"]
            admin = {"X-CSRF-Token": secret["csrf token"]}
            explained = http.get(
                f"{API}/sites/{charity.site_id}/explain",
                params={"subscriber": str(subscriber.id)},
                headers=admin,
            )
            assert explained.status_code == 200, explained.text
            org = charity.organisation_id
            invited = http.post(
                f"{API}/organisations/{org}/invites", json={"email": invitee_email}, headers=admin
            )
            assert invited.status_code == 201, invited.text
            secret["invitee"] = invitee_email
            secret["invite token"] = invited.json()["token"]
            paired = http.post(f"{API}/organisations/{org}/test-devices/pairing-codes", headers=admin)
            assert paired.status_code == 201, paired.text
            secret["pairing code"] = paired.json()["code"]
            http.cookies.clear()
            accepted = http.post(
                f"{API}/invites/accept",
                json={"token": secret["invite token"], "password": "a long passphrase of the helper"},
            )
            assert accepted.status_code == 200, accepted.text
            pairing = {"code": secret["pairing code"], "label": "Kim's phone"}
            assert (
                http.post("/mobile/v1/me/test-device", json=pairing, headers=phone.headers).status_code == 201
            )

            # The person takes their data and leaves.
            assert http.get("/mobile/v1/me/export", headers=phone.headers).status_code == 200
            assert http.delete("/mobile/v1/me", headers=phone.headers).status_code == 204
            output = server.stop()
    finally:
        peer.close()
        session.close()
        engine.dispose()

    lines = records(output)  # every line is JSON
    access = [r for r in lines if r["logger"] == "nahbar.access"]
    assert {"/p/{token}", "/p/{token}/go", "/p/*", "/mobile/v1/me/export"} <= {r["path"] for r in access}
    assert any(r["logger"] == "nahbar.decisions" for r in lines)  # the app's own lines are there too
    assert any(r["logger"] == "nahbar.delivery" and r["event"] == "push sent" for r in lines), output
    found = {what: value for what, value in secret.items() if value in output}
    assert not found, f"personal data in the logs: {sorted(found)}\n{output}"


def test_the_access_log_names_the_client_only_when_the_operator_turns_it_on(settings, clock, caplog):
    caplog.set_level(logging.INFO, logger="nahbar.access")
    for on in (False, True):
        app = create_app(settings.model_copy(update={"log_client_addresses": on}), clock=clock)
        with TestClient(app, client=("198.51.100.23", 40_000)) as client:
            assert client.get("/healthz").status_code == 200
    off_line, on_line = [r for r in caplog.records if r.name == "nahbar.access"]
    assert not hasattr(off_line, "client")
    assert on_line.client == "198.51.100.23"  # type: ignore[attr-defined]
    assert (on_line.method, on_line.path, on_line.status) == ("GET", "/healthz", 200)  # type: ignore[attr-defined]
