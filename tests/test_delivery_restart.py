"""A server killed between a prompt's decision and the record of its send, then started again on the same
database: the phone shows the prompt once. Real `nahbar serve` processes, a real push service on loopback.

Two crashes: while the push service still holds the request (claimed, maybe delivered, never answered), and
after it answered 201 but before the server could commit `sent` (the test holds a write lock on the
database until the process is dead). Either way the delivery row stays claimed; after the lease the restarted
server's sweep sends it again with the same Topic, so a push service replaces the first message instead of
showing a second one, and the row ends `sent`, after which nothing more is sent for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine, select, text

from server.core.const import DELIVERY_SWEEP_EVERY_S
from server.prompts.models import Delivery, PromptDecision
from tests.conftest import TEST_SECRET
from tests.delivery_world import Browser, add_channel, subscriber_of
from tests.world import Phone, event, make_charity

pytestmark = pytest.mark.slow

NAHBAR = Path(sys.executable).parent / "nahbar"
PUSH_TIMEOUT_S = 1  # NAHBAR_PUSH_TIMEOUT_SECONDS: short, so that the shortest lease it allows is short too
LEASE_S = 6  # NAHBAR_DELIVERY_LEASE_SECONDS: a claimed send is retried this long after the claim
WAIT_S = 30.0  # the bound of every wait below


@dataclass
class Pushed:
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """A Web Push service on a loopback port answering 201. While `hold` is unset it keeps each request open
    after reading it; `answered` is set once an answer has been written and flushed."""

    hold: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)
    received: list[Pushed] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with service.arrived:
                    service.received.append(Pushed({k.lower(): v for k, v in self.headers.items()}, body))
                    service.arrived.notify_all()
                service.hold.wait(WAIT_S)
                try:
                    self.send_response(201)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except OSError:  # the server was killed while its request was held
                    return
                service.answered.set()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[Pushed]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, WAIT_S), (
                f"expected {count} push requests, got {len(self.received)}"
            )
            return list(self.received)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is around noon now, so quiet hours never interfere with the test."""
    offset = (12 - now.hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no outbox.stop(), no commit of anything in flight."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_S)


@contextmanager
def nahbar_serve(database_url: str, vapid_pem: str, log: Path) -> Iterator[Server]:
    """One real `nahbar serve` process, ready (EID index loaded); terminated on exit unless already dead."""
    env = os.environ | {
        "NAHBAR_DATABASE_URL": database_url,
        "NAHBAR_SECRET_KEY": TEST_SECRET,
        "NAHBAR_ENVIRONMENT": "test",
        "NAHBAR_EID_ROTATION_EXPONENT": "10",
        "NAHBAR_VAPID_PRIVATE_KEY": vapid_pem,
        "NAHBAR_VAPID_SUBJECT": "mailto:push-ops@nahbar.example.org",
        "NAHBAR_ALLOW_PRIVATE_PUSH_HOSTS": "true",  # the push service is on loopback
        "NAHBAR_PUSH_TIMEOUT_SECONDS": str(PUSH_TIMEOUT_S),
        "NAHBAR_DELIVERY_LEASE_SECONDS": str(LEASE_S),
        "NAHBAR_LOG_LEVEL": "INFO",
    }
    port = free_port()
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [str(NAHBAR), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(WAIT_S)


def walk_past(url: str, gateway: dict[str, str], phone: Phone) -> None:
    now = datetime.now(UTC)
    batch = {
        "events": [
            event("restart-enter-0001", phone, now - timedelta(seconds=20)),
            event("restart-dwell-0002", phone, now, "dwell", 20),
        ]
    }
    answer = httpx.post(f"{url}/gateway/v1/events", json=batch, headers=gateway, timeout=WAIT_S)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prompts"] == 1, answer.text


def webpush_rows(session) -> list[Delivery]:
    session.expire_all()
    return list(
        session.scalars(select(Delivery).where(Delivery.channel_kind == "webpush").order_by(Delivery.id))
    )


def wait_until_sent(session) -> Delivery:
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = webpush_rows(session)
        if rows and rows[0].status == "sent":
            return rows[0]
        assert time.monotonic() < deadline, f"never sent: {[(r.status, r.attempts) for r in rows]}"
        time.sleep(0.1)


@contextmanager
def write_lock(engine: Engine, delivery_id: int) -> Iterator[None]:
    """Hold what the server needs to record the send: the delivery row (PostgreSQL) or the database's one
    write lock (SQLite), until the block ends."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT id FROM deliveries WHERE id = :id FOR UPDATE"), {"id": delivery_id}
            )
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()


def wait_for_the_blocked_record(engine: Engine) -> None:
    """Until the server's UPDATE of the row waits on the test's lock: it got the 201 and tries to record it.
    PostgreSQL shows this in pg_stat_activity; SQLite cannot, so there a moment's grace stands in for it (the
    lock alone already keeps the record from committing)."""
    if engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE deliveries%'"
    )
    deadline = time.monotonic() + WAIT_S
    with engine.connect() as connection:
        while connection.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the server never tried to record the send"
            time.sleep(0.05)
            connection.rollback()


@pytest.fixture
def vapid_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.close()


@pytest.mark.parametrize("crash", ["before_the_answer", "after_201_before_the_commit"])
def test_a_server_killed_mid_send_delivers_the_prompt_once_after_restart(
    crash, database_url, engine, session, vapid_pem, push_service, tmp_path
):
    log = tmp_path / "server.log"
    browser = Browser.new()
    code = make_charity(session, datetime.now(UTC), timezone=noon_zone(datetime.now(UTC))).enrolment_code

    with nahbar_serve(database_url, vapid_pem, log) as first:
        enrolled = httpx.post(f"{first.url}/gateway/v1/enroll", json={"code": code}, timeout=WAIT_S)
        assert enrolled.status_code == 200, enrolled.text
        gateway = {"Authorization": f"Bearer {enrolled.json()['token']}"}
        body = {"consent_text_version": "2026-11", "scopes": ["volunteer"], "language": "en"}
        opted = httpx.post(f"{first.url}/mobile/v1/optin", json=body, timeout=WAIT_S)
        assert opted.status_code == 201, opted.text
        data = opted.json()
        phone = Phone(
            {"Authorization": f"Bearer {data['device_token']}"},
            bytes.fromhex(data["identity_key"]),
            data["rotation_exponent"],
        )
        subscriber = subscriber_of(session, phone)
        add_channel(session, subscriber.id, "webpush", f"{push_service.url}/push/sub-1", **browser.keys())

        walk_past(first.url, gateway, phone)
        push_service.wait_for(1)  # the sender claimed the row (committed) and is sending
        [claimed] = webpush_rows(session)
        if crash == "before_the_answer":
            first.kill()
            push_service.hold.set()
        else:
            with write_lock(engine, claimed.id):
                push_service.hold.set()
                assert push_service.answered.wait(WAIT_S), "the push service never answered"
                wait_for_the_blocked_record(engine)
                first.kill()

    [left] = webpush_rows(session)
    assert (left.status, left.attempts, left.sent_at) == ("pending", 1, None), "the send was recorded"

    with nahbar_serve(database_url, vapid_pem, log):
        sent = wait_until_sent(session)  # the sweep, after the lease, or the sender at start
        first_push, resend = push_service.wait_for(2)
        # A sweep and a lease after the send: the row is done, nothing more goes out for it.
        time.sleep(DELIVERY_SWEEP_EVERY_S + LEASE_S + 1)
        assert len(push_service.received) == 2, "sent again after it was recorded as sent"

    assert (sent.status, sent.attempts) == ("sent", 2)
    assert webpush_rows(session) == [sent], "one delivery row for the phone's channel"
    session.expire_all()
    assert (
        session.scalar(select(PromptDecision.id).where(PromptDecision.outcome == "prompted"))
        == sent.decision_id
    )
    assert first_push.headers["topic"] == resend.headers["topic"], "a push service would show both"
    assert first_push.headers["urgency"] == resend.headers["urgency"] == "high"
    payloads = [
        json.loads(
            http_ece.decrypt(
                p.body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
        )
        for p in (first_push, resend)
    ]
    assert payloads[0] == payloads[1], "the resend is the same prompt (title, body, landing page, tag)"
    assert payloads[0]["tag"] == first_push.headers["topic"]
