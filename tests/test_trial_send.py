"""Test sends: a phone becomes a charity's test device only with a one-time code it enters itself; a test send
reaches that phone alone (inbox and Web Push through the outbox), counts against no cap, records no answers,
is audited; viewers get 403 and other charities 404."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from server.app import create_app
from server.audit.models import AuditEntry
from server.campaigns import trial_send
from server.core.config import Settings
from server.prompts.models import PromptDecision, PromptResponse
from tests.admin_world import API, add_user, signed_in
from tests.delivery_world import Browser, Peer, add_channel, subscriber_of, walk_past
from tests.world import enrol, make_charity, opt_in


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def push_settings(settings: Settings, vapid_key) -> Settings:
    pem = vapid_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return settings.model_copy(
        update={"vapid_private_key": SecretStr(pem), "vapid_subject": "mailto:ops@nahbar.example.org"}
    )


@pytest.fixture
def app_client(push_settings, clock):
    with TestClient(create_app(push_settings, clock=clock)) as client:
        yield client


@pytest.fixture
def peer():
    peer = Peer()
    yield peer
    peer.close()


class Charities:
    def __init__(self, client, session, now):
        self.a = make_charity(session, now, slug="hospiz")
        self.b = make_charity(session, now, slug="tafel")
        self.users = {
            "editor": add_user(session, "editor@hospiz.example", roles={self.a.organisation_id: "editor"}),
            "viewer": add_user(session, "viewer@hospiz.example", roles={self.a.organisation_id: "viewer"}),
            "owner_b": add_user(session, "owner@tafel.example", roles={self.b.organisation_id: "owner"}),
        }
        self.headers = {name: signed_in(session, user, now) for name, user in self.users.items()}
        session.commit()
        self.client = client

    def url(self, path: str, org=None) -> str:
        return f"{API}/organisations/{(org or self.a).organisation_id}{path}"

    def code(self, who: str = "editor", org=None) -> str:
        answer = self.client.post(self.url("/test-devices/pairing-codes", org), headers=self.headers[who])
        assert answer.status_code == 201, answer.text
        return answer.json()["code"]

    def pair(self, phone, code: str, label: str = "Anna's Pixel"):
        return self.client.post(
            "/mobile/v1/me/test-device", json={"code": code, "label": label}, headers=phone.headers
        )

    def send(self, device_id: int, who: str = "editor", org=None, campaign_id=None, **choice):
        campaign_id = campaign_id or (org or self.a).campaign_id
        return self.client.post(
            self.url(f"/campaigns/{campaign_id}/test-send", org),
            json={"test_device_id": device_id} | choice,
            headers=self.headers[who],
        )


@pytest.fixture
def charities(app_client, session, clock) -> Charities:
    return Charities(app_client, session, clock())


def test_a_phone_pairs_with_a_one_time_code_and_the_list_shows_it(charities, app_client, clock):
    phone = opt_in(app_client, language="en")
    code = charities.code()
    assert len(code) == 12
    paired = charities.pair(phone, code)
    assert paired.status_code == 201, paired.text
    assert paired.json()["organisation"] == "hospiz e.V."
    again = charities.pair(opt_in(app_client), code)
    assert (again.status_code, again.json()["code"]) == (422, "invalid_pairing_code")
    listed = app_client.get(charities.url("/test-devices"), headers=charities.headers["viewer"]).json()
    assert [(d["id"], d["label"]) for d in listed["items"]] == [(paired.json()["id"], "Anna's Pixel")]

    late = charities.code()
    clock.advance(15 * 60)
    expired = charities.pair(opt_in(app_client), late)
    assert (expired.status_code, expired.json()["code"]) == (422, "invalid_pairing_code")
    assert charities.pair(phone, "ABCDEFGHJKMN").status_code == 422


def test_the_send_arrives_by_inbox_and_web_push_and_counts_against_no_cap(
    charities, app_client, session, clock, peer
):
    phone = opt_in(app_client, language="en")
    browser = Browser.new()
    add_channel(session, subscriber_of(session, phone).id, "webpush", f"{peer.url}/push/t", **browser.keys())
    bystander = opt_in(app_client, language="en")
    device_id = charities.pair(phone, charities.code()).json()["id"]

    first = charities.send(device_id)
    assert first.status_code == 201, first.text
    assert (first.json()["language"], first.json()["channels"]) == ("en", ["inbox", "webpush"])
    [request] = peer.wait_for(1)
    payload = json.loads(
        http_ece.decrypt(
            request.body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
        )
    )
    assert (payload["title"], payload["body"]) == ("Help?", "Please.")
    [entry] = app_client.get("/mobile/v1/me/prompts", headers=phone.headers).json()["prompts"]
    assert (entry["id"], entry["test"], entry["title"]) == (first.json()["decision_id"], True, "Help?")
    assert entry["landing_url"] == payload["url"]
    assert app_client.get("/mobile/v1/me/prompts", headers=bystander.headers).json() == {"prompts": []}

    # Another language of the same campaign, beyond the daily cap of one: a test send counts towards none.
    german = charities.send(device_id, language="de")
    assert (german.status_code, german.json()["language"]) == (201, "de")
    session.expire_all()
    tests = session.scalars(select(PromptDecision).where(PromptDecision.outcome == "test")).all()
    assert len(tests) == 2
    assert {(d.local_day, d.day_slot, d.reason) for d in tests} == {(None, None, "test_send")}
    # The phone is still prompted for real the same day.
    walk_past(app_client, enrol(app_client, charities.a.enrolment_code), phone, clock())

    # Its page says it is a test, and answers on it are not recorded.
    page = app_client.get(urlsplit(entry["landing_url"]).path)
    assert "Test send" in page.text
    answered = app_client.post(
        urlsplit(entry["landing_url"]).path,
        data={"kind": "not_this_org"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert answered.status_code == 200
    assert "Test send: your choice was not recorded." in answered.text
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PromptResponse)) == 0

    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "test_send")).all()
    assert [(e.entity_id, e.after["test_device_id"]) for e in audited] == [
        (str(charities.a.campaign_id), device_id)
    ] * 2


def test_only_a_paired_test_device_of_the_organisation_can_be_targeted(charities, app_client, session):
    phone = opt_in(app_client)
    ours = charities.pair(phone, charities.code()).json()["id"]
    theirs = charities.pair(opt_in(app_client), charities.code("owner_b", charities.b)).json()["id"]
    # Not a device id of this organisation (another charity's test phone, a made-up id): 404, nothing sent.
    for device_id in (theirs, ours + theirs + 100):
        answer = charities.send(device_id)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), answer.text
    # Not another charity's campaign either, nor a variant that is not the campaign's.
    assert charities.send(ours, campaign_id=charities.b.campaign_id).status_code == 404
    assert charities.send(ours, variant_id=10_000).status_code == 404
    session.expire_all()
    assert session.scalars(select(PromptDecision).where(PromptDecision.outcome == "test")).all() == []

    removed = app_client.delete(charities.url(f"/test-devices/{ours}"), headers=charities.headers["editor"])
    assert removed.status_code == 204
    assert charities.send(ours).status_code == 404
    listed = app_client.get(charities.url("/test-devices"), headers=charities.headers["editor"])
    assert listed.json() == {"items": []}


def test_viewers_get_403_and_other_charities_404(charities, app_client):
    device_id = charities.pair(opt_in(app_client), charities.code()).json()["id"]
    viewer = charities.headers["viewer"]
    for answer in (
        app_client.post(charities.url("/test-devices/pairing-codes"), headers=viewer),
        charities.send(device_id, who="viewer"),
        app_client.delete(charities.url(f"/test-devices/{device_id}"), headers=viewer),
    ):
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), answer.text
    other = charities.headers["owner_b"]
    for answer in (
        app_client.post(charities.url("/test-devices/pairing-codes"), headers=other),
        app_client.get(charities.url("/test-devices"), headers=other),
        charities.send(device_id, who="owner_b"),
        app_client.delete(charities.url(f"/test-devices/{device_id}"), headers=other),
    ):
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), answer.text


def test_pairing_codes_are_stored_hashed_and_expire_in_15_minutes(charities, session, clock):
    code = charities.code()
    session.expire_all()
    [row] = session.scalars(select(trial_send.PairingCode)).all()
    assert code not in row.code_hash
    assert row.expires_at == clock() + timedelta(minutes=15)
