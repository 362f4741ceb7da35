"""Local stand-ins for push services (real HTTP servers on loopback), a browser-side Web Push subscription,
and a prompted person, for the delivery tests."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.config import Settings
from server.delivery.jwt import b64url
from server.prompts.models import Delivery, PromptDecision
from server.subscribers.models import PushChannel, Subscriber
from tests.world import Charity, Phone, enrol, event, make_charity, opt_in


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    """A push service on a loopback port. `answers` are (status, headers, body) served in turn; the last one
    repeats. `hold` makes it keep a request open until released (a crash test's in-flight send)."""

    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=lambda: [(201, {}, b"")])
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    hold: threading.Event | None = None

    def __post_init__(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with peer.arrived:
                    peer.received.append(Received(self.path, dict(self.headers.items()), body))
                    index = min(len(peer.received), len(peer.answers)) - 1
                    peer.arrived.notify_all()
                if peer.hold is not None:
                    peer.hold.wait(30)
                status, headers, payload = peer.answers[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), (
                f"expected {count} push requests, got {len(self.received)}"
            )
            return list(self.received)

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Browser:
    """What a browser keeps for a PushSubscription: its P-256 key pair and the 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


# Nothing listens on the discard port: a push tried there fails at once, on this machine.
NOWHERE = "http://127.0.0.1:9"


def every_push_service(settings: Settings, folder: Path) -> Settings:
    """Web Push, FCM and APNs each configured with fresh keys, their services at NOWHERE: phones may
    register channels of every kind, and whatever the outbox sends fails locally."""
    pkcs8 = (Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(*pkcs8).decode()
    account = {
        "project_id": "nahbar-test",
        "client_email": "nahbar@nahbar-test.iam.gserviceaccount.com",
        "private_key": rsa.generate_private_key(65537, 2048).private_bytes(*pkcs8).decode(),
        "token_uri": f"{NOWHERE}/token",
    }
    (folder / "fcm.json").write_text(json.dumps(account))
    (folder / "apns.p8").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(*pkcs8))
    return settings.model_copy(
        update={
            "vapid_private_key": SecretStr(vapid),
            "vapid_subject": "mailto:push-ops@nahbar.example.org",
            "fcm_service_account_file": str(folder / "fcm.json"),
            "fcm_base_url": NOWHERE,
            "apns_key_file": str(folder / "apns.p8"),
            "apns_key_id": "ABC123DEFG",
            "apns_team_id": "DEF123GHIJ",
            "apns_topic": "org.nahbar.app",
            "apns_production_url": NOWHERE,
            "apns_sandbox_url": NOWHERE,
        }
    )


def subscriber_of(session: Session, phone: Phone) -> Subscriber:
    from server.core.security import hash_token

    token = phone.headers["Authorization"].removeprefix("Bearer ")
    found = session.scalar(select(Subscriber).where(Subscriber.device_token_hash == hash_token(token)))
    assert found is not None
    return found


def add_channel(session: Session, subscriber_id: uuid.UUID, kind: str, endpoint: str, **keys: Any) -> int:
    """A channel pointing at a local peer (the mobile API insists on https, a loopback peer speaks http)."""
    channel = PushChannel(subscriber_id=subscriber_id, kind=kind, endpoint=endpoint, keys=keys)
    session.add(channel)
    session.commit()
    return channel.id


def passer_by(
    client: TestClient, session: Session, now: datetime, language: str = "en"
) -> tuple[Charity, dict[str, str], Phone]:
    charity = make_charity(session, now)
    return charity, enrol(client, charity.enrolment_code), opt_in(client, ["volunteer"], language=language)


def walk_past(
    client: TestClient, gateway: dict[str, str], phone: Phone, now: datetime, key: str = "walk"
) -> None:
    """An enter and a 20 s dwell: long enough for any minimum dwell."""
    batch = {
        "events": [
            event(f"{key}-enter-0001", phone, now - timedelta(seconds=20)),
            event(f"{key}-dwell-0002", phone, now, "dwell", 20),
        ]
    }
    answer = client.post("/gateway/v1/events", json=batch, headers=gateway)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prompts"] == 1, answer.text


def deliveries(session: Session, kind: str | None = None) -> list[Delivery]:
    session.expire_all()
    query = select(Delivery).order_by(Delivery.id)
    if kind is not None:
        query = query.where(Delivery.channel_kind == kind)
    return list(session.scalars(query))


def the_decision(session: Session) -> PromptDecision:
    session.expire_all()
    return session.scalars(select(PromptDecision).where(PromptDecision.outcome == "prompted")).one()


def json_body(received: Received) -> dict[str, Any]:
    return json.loads(received.body)
