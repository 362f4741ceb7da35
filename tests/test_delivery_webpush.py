"""Web Push end to end: a gateway's event -> decision -> outbox -> a local push service, whose request the
test decrypts with http_ece and the browser's private key, and whose VAPID JWT it verifies."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlsplit

import http_ece
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr

from server.app import create_app
from server.core.config import Settings
from server.delivery.jwt import b64url, b64url_decode, sign_es256
from server.delivery.providers.base import Message, Target
from server.delivery.providers.webpush import WebPushProvider
from server.delivery.tasks import sweep
from server.subscribers.models import PushChannel
from tests.delivery_world import Browser, Peer, add_channel, deliveries, passer_by, subscriber_of, walk_past

SUBJECT = "mailto:push-ops@nahbar.example.org"


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def push_settings(settings: Settings, vapid_key) -> Settings:
    pem = vapid_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return settings.model_copy(update={"vapid_private_key": SecretStr(pem), "vapid_subject": SUBJECT})


@pytest.fixture
def peer():
    peer = Peer()
    yield peer
    peer.close()


def verify_vapid(authorization: str, vapid_key: ec.EllipticCurvePrivateKey) -> dict:
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(fields["k"]))
    assert public.public_numbers() == vapid_key.public_key().public_numbers()
    header, claims, signature = fields["t"].split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    assert json.loads(b64url_decode(header)) == {"alg": "ES256", "typ": "JWT"}
    return json.loads(b64url_decode(claims))


def test_a_prompt_arrives_encrypted_with_a_valid_vapid_jwt(push_settings, vapid_key, peer, session, clock):
    browser = Browser.new()
    with TestClient(create_app(push_settings, clock=clock)) as client:
        _charity, gateway, phone = passer_by(client, session, clock())
        subscriber = subscriber_of(session, phone)
        add_channel(session, subscriber.id, "webpush", f"{peer.url}/push/sub-1", **browser.keys())
        walk_past(client, gateway, phone, clock())
        [request] = peer.wait_for(1)

        assert request.path == "/push/sub-1"
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["content-encoding"] == "aes128gcm"
        assert headers["ttl"] == "600"
        assert headers["urgency"] == "high"
        topic = headers["topic"]
        assert len(topic) <= 32
        assert set(topic) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

        claims = verify_vapid(headers["authorization"], vapid_key)
        assert claims["aud"] == peer.url
        assert claims["sub"] == SUBJECT
        assert time.time() < claims["exp"] <= time.time() + 24 * 3600

        plain = http_ece.decrypt(
            request.body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
        )
        payload = json.loads(plain)
        assert payload["title"] == "Help?"
        assert payload["body"] == "Please."
        assert payload["lang"] == "en"
        assert payload["tag"] == topic
        landing = urlsplit(payload["url"])
        assert landing.path.startswith("/p/")
        assert len(landing.path) > 3 + 40

        page = client.get(landing.path)
        assert page.status_code == 200
        assert "Help?" in page.text

        for _ in range(100):
            if deliveries(session, "webpush")[0].status == "sent":
                break
            time.sleep(0.02)
        [sent] = deliveries(session, "webpush")
        assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, clock())
        assert deliveries(session, "inbox")[0].status == "available"


def test_a_tampered_signature_would_be_caught(vapid_key):
    other = ec.generate_private_key(ec.SECP256R1())
    token = sign_es256(other, {"aud": "x", "exp": 1, "sub": SUBJECT})
    k = b64url(vapid_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    with pytest.raises(InvalidSignature):
        verify_vapid(f"vapid t={token}, k={k}", vapid_key)


def test_a_mailto_on_localhost_is_refused_as_vapid_subject():
    with pytest.raises(ValueError, match="reachable contact"):
        Settings(vapid_subject="mailto:admin@localhost")
    assert Settings(vapid_subject="https://charity.example.org/contact").vapid_subject


def test_gone_subscriptions_are_retired_and_busy_services_retried(push_settings, session, clock):
    browser = Browser.new()
    gone = Peer(answers=[(410, {}, b"")])
    busy = Peer(answers=[(429, {"Retry-After": "7"}, b""), (201, {}, b"")])
    try:
        with TestClient(create_app(push_settings, clock=clock)) as client:
            _charity, gateway, phone = passer_by(client, session, clock())
            subscriber = subscriber_of(session, phone)
            dead = add_channel(session, subscriber.id, "webpush", f"{gone.url}/gone", **browser.keys())
            add_channel(session, subscriber.id, "webpush", f"{busy.url}/busy", **browser.keys())
            walk_past(client, gateway, phone, clock())
            gone.wait_for(1)
            busy.wait_for(1)
            for _ in range(100):
                if all(d.status != "pending" or d.last_error for d in deliveries(session, "webpush")):
                    break
                time.sleep(0.02)
            first, second = deliveries(session, "webpush")
            assert first.status == "failed"
            assert "410" in (first.last_error or "")
            session.expire_all()
            assert session.get(PushChannel, dead).retired_at == clock()
            assert second.status == "pending"
            assert "429" in (second.last_error or "")
            wait = (second.next_attempt_at - clock()).total_seconds()
            assert 7 <= wait <= 8, wait  # Retry-After honoured, with up to a second of jitter

            clock.advance(wait)
            sweep(client.app.state.runtime)  # the scheduler runs it every few seconds; now, here
            busy.wait_for(2)
            for _ in range(100):
                if deliveries(session, "webpush")[1].status == "sent":
                    break
                time.sleep(0.02)
            assert deliveries(session, "webpush")[1].status == "sent"
            assert deliveries(session, "webpush")[1].attempts == 2
    finally:
        gone.close()
        busy.close()


def test_a_push_gives_up_after_the_push_timeout_setting(push_settings, clock):
    """NAHBAR_PUSH_TIMEOUT_SECONDS bounds the request the lease is checked against: a push service that holds
    it gets a retry, and the request is abandoned while the service still holds it."""
    peer = Peer(hold=threading.Event())
    try:
        provider = WebPushProvider.from_settings(
            push_settings.model_copy(update={"push_timeout_seconds": 0.25})
        )
        browser = Browser.new()
        target = Target(1, f"{peer.url}/push/slow", browser.keys())
        message = Message(1, "Help?", "Please.", "https://x.example/p/t", "topic-1", 60, clock(), "en")

        result = provider.send(target, message)

        # The client the sender thread used carries the setting (connect included); 10 s is the default.
        assert provider._clients.get().timeout == httpx.Timeout(0.25)
        assert result.outcome == "retry"
        assert result.detail.startswith("ReadTimeout")
        assert not peer.hold.is_set()  # the push service never answered: the client gave up on its own
        assert len(peer.received) == 1
        provider.close()
    finally:
        peer.close()
