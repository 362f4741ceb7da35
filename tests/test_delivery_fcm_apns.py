"""FCM HTTP v1 and APNs (over real HTTP/2, h2c) against local services that answer like the real ones:
success, gone (404 UNREGISTERED / 410 / BadDeviceToken in both environments), 429 with Retry-After and 500;
retries, channel retirement and the APNs environment check."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from hypercorn.asyncio import serve
from hypercorn.config import Config

from server.app import create_app
from server.delivery.jwt import b64url_decode
from server.delivery.providers import build_providers
from server.delivery.tasks import sweep
from server.subscribers.models import PushChannel
from tests.conftest import LiveServer
from tests.delivery_world import add_channel, deliveries, passer_by, subscriber_of, walk_past

Answer = tuple[int, dict[str, str], bytes]


class Fake:
    """An ASGI push service: `route(path, headers, body, seen)` answers; every request is kept."""

    def __init__(self, route: Callable[[str, dict[str, str], bytes, int], Answer]) -> None:
        self.route = route
        self.requests: list[tuple[str, dict[str, str], bytes, str]] = []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            seen = sum(1 for r in self.requests if r[0] == scope["path"])
            self.requests.append((scope["path"], headers, body, scope["http_version"]))
        status, extra, payload = self.route(scope["path"], headers, body, seen)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def paths(self) -> list[str]:
        with self.lock:
            return [r[0] for r in self.requests]


def wait_settled(session, kind: str, count: int) -> list:
    for _ in range(250):
        rows = deliveries(session, kind)
        if len(rows) == count and all(d.status != "pending" or d.last_error for d in rows):
            return rows
        time.sleep(0.02)
    raise AssertionError([(d.status, d.last_error) for d in deliveries(session, kind)])


def verify_jwt(token: str, verify) -> tuple[dict, dict]:
    header, claims, signature = token.split(".")
    verify(b64url_decode(signature), f"{header}.{claims}".encode())
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


# --- FCM ---------------------------------------------------------------------------------------------


def fcm_error(status: int, rpc: str, code: str | None = None) -> bytes:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
    )
    return json.dumps({"error": {"code": status, "status": rpc, "details": details}}).encode()


def test_fcm_sends_retires_and_retries(settings, session, clock, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens_issued = []

    def route(path, headers, body, seen) -> Answer:
        if path == "/token":
            form = dict(part.split("=", 1) for part in body.decode().split("&"))
            _header, claims = verify_jwt(
                form["assertion"],
                lambda sig, data: key.public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256()),
            )
            assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
            assert claims["iss"] == "nahbar@proj.iam.gserviceaccount.com"
            tokens_issued.append(claims)
            return 200, {"content-type": "application/json"}, b'{"access_token":"ya29.t","expires_in":3599}'
        assert path == "/v1/projects/proj/messages:send"
        assert headers["authorization"] == "Bearer ya29.t"
        token = json.loads(body)["message"]["token"]
        if token.startswith("gone"):
            return 404, {}, fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        if token.startswith("busy") and seen_for(token) == 1:
            return 429, {"retry-after": "5"}, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
        if token.startswith("down") and seen_for(token) == 1:
            return 500, {}, fcm_error(500, "INTERNAL", "INTERNAL")
        return 200, {}, b'{"name":"projects/proj/messages/0:1"}'

    def seen_for(token: str) -> int:
        return sum(
            1
            for r in fake.requests
            if r[0].endswith(":send") and json.loads(r[2])["message"]["token"] == token
        )

    fake = Fake(route)
    with LiveServer(fake) as peer:
        account = {
            "type": "service_account",
            "project_id": "proj",
            "client_email": "nahbar@proj.iam.gserviceaccount.com",
            "private_key": key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
            "token_uri": f"{peer.url}/token",
        }
        (tmp_path / "sa.json").write_text(json.dumps(account))
        fcm_settings = settings.model_copy(
            update={"fcm_service_account_file": str(tmp_path / "sa.json"), "fcm_base_url": peer.url}
        )
        with TestClient(create_app(fcm_settings, clock=clock)) as client:
            _charity, gateway, phone = passer_by(client, session, clock())
            subscriber = subscriber_of(session, phone)
            ids = {
                name: add_channel(session, subscriber.id, "fcm", f"{name}-token")
                for name in ("ok", "gone", "busy", "down")
            }
            walk_past(client, gateway, phone, clock())
            ok, gone, busy, down = wait_settled(session, "fcm", 4)

            assert ok.status == "sent"
            assert gone.status == "failed"
            session.expire_all()
            assert session.get(PushChannel, ids["gone"]).retired_at is not None
            assert session.get(PushChannel, ids["ok"]).retired_at is None
            assert busy.status == "pending"
            assert 5 <= (busy.next_attempt_at - clock()).total_seconds() <= 6
            assert down.status == "pending"
            assert down.next_attempt_at > clock()

            sent = json.loads(next(r[2] for r in fake.requests if r[0].endswith(":send")))["message"]
            assert sent["android"]["ttl"] == "600s"
            assert sent["android"]["priority"] == "high"
            assert sent["android"]["collapse_key"] == sent["data"]["tag"]
            assert sent["notification"] == {"title": "Help?", "body": "Please."}

            clock.advance(7)
            sweep(client.app.state.runtime)
            for _ in range(250):
                if [d.status for d in deliveries(session, "fcm")] == ["sent", "failed", "sent", "sent"]:
                    break
                time.sleep(0.02)
            assert [d.status for d in deliveries(session, "fcm")] == ["sent", "failed", "sent", "sent"]
            assert [d.attempts for d in deliveries(session, "fcm")] == [1, 1, 2, 2]
            assert len(tokens_issued) == 1  # the OAuth token is cached for its lifetime


# --- APNs over HTTP/2 ----------------------------------------------------------------------------------

ALIVE = "aa" * 32
SANDBOX_ONLY = "bb" * 32
DEAD = "cc" * 32
UNREGISTERED = "dd" * 32
BUSY = "ee" * 32
DOWN = "ff" * 32


class H2Server:
    """Hypercorn on a loopback port: HTTP/2 by prior knowledge (h2c), as the APNs client speaks it here."""

    def __init__(self, app) -> None:
        self.config = Config()
        self.config.bind = ["127.0.0.1:0"]
        self.config.loglevel = "WARNING"
        self.app = app
        self.ready = threading.Event()
        self.url = ""

    def __enter__(self) -> H2Server:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self.config.bind = [f"127.0.0.1:{port}"]
        self.url = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()

        async def main() -> None:
            self.ready.set()
            await serve(self.app, self.config, shutdown_trigger=self.stop.wait)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        self.ready.wait(5)
        deadline = time.monotonic() + 10
        while True:  # `ready` is set before Hypercorn binds: wait until it accepts, fail if it never does
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        return self

    def __exit__(self, *_exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


def test_apns_over_http2_checks_the_other_environment_before_retiring(settings, session, clock, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())

    def route(path, headers, body, seen) -> Answer:
        env, _, token = path.strip("/").partition("/3/device/")
        alive_here = token == ALIVE or (token == SANDBOX_ONLY and env == "sandbox")
        if token in {ALIVE, SANDBOX_ONLY, DEAD} and not alive_here:
            return 400, {}, b'{"reason":"BadDeviceToken"}'
        if token == UNREGISTERED:
            return 410, {}, b'{"reason":"Unregistered","timestamp":1764000000000}'
        if token == BUSY and seen == 0:
            return 429, {"retry-after": "3"}, b'{"reason":"TooManyRequests"}'
        if token == DOWN and seen == 0:
            return 500, {}, b'{"reason":"InternalServerError"}'
        return 200, {"apns-id": "77E1B1D4-0000-0000-0000-000000000000"}, b""

    fake = Fake(route)
    (tmp_path / "AuthKey.p8").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    with H2Server(fake) as peer:
        apns_settings = settings.model_copy(
            update={
                "apns_key_file": str(tmp_path / "AuthKey.p8"),
                "apns_key_id": "ABC123DEFG",
                "apns_team_id": "DEF123GHIJ",
                "apns_topic": "org.nahbar.app",
                "apns_production_url": f"{peer.url}/production",
                "apns_sandbox_url": f"{peer.url}/sandbox",
            }
        )
        with TestClient(create_app(apns_settings, clock=clock)) as client:
            _charity, gateway, phone = passer_by(client, session, clock())
            subscriber = subscriber_of(session, phone)
            ids = {
                t: add_channel(session, subscriber.id, "apns", t, environment="production")
                for t in (ALIVE, SANDBOX_ONLY, DEAD, UNREGISTERED, BUSY, DOWN)
            }
            walk_past(client, gateway, phone, clock())
            rows = wait_settled(session, "apns", 6)
            assert [d.status for d in rows] == ["sent", "sent", "failed", "failed", "pending", "pending"], [
                (d.status, d.last_error) for d in rows
            ]
            session.expire_all()
            channels = {t: session.get(PushChannel, i) for t, i in ids.items()}
            assert channels[SANDBOX_ONLY].keys["environment"] == "sandbox"
            assert channels[SANDBOX_ONLY].retired_at is None
            assert channels[DEAD].retired_at is not None
            assert channels[UNREGISTERED].retired_at is not None
            assert channels[ALIVE].retired_at is None
            assert 3 <= (rows[4].next_attempt_at - clock()).total_seconds() <= 4
            dead_paths = [p for p in fake.paths() if p.endswith(DEAD)]
            assert sorted(dead_paths) == [f"/production/3/device/{DEAD}", f"/sandbox/3/device/{DEAD}"]

            path, headers, body, version = fake.requests[0]
            assert version == "2"
            assert headers["apns-push-type"] == "alert"
            assert headers["apns-priority"] == "10"
            assert headers["apns-topic"] == "org.nahbar.app"
            assert int(headers["apns-expiration"]) == int(clock().timestamp()) + 600
            assert len(headers["apns-collapse-id"]) <= 64
            assert json.loads(body)["aps"]["alert"] == {"title": "Help?", "body": "Please."}

            def es256(sig: bytes, data: bytes) -> None:
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                key.public_key().verify(der, data, ec.ECDSA(hashes.SHA256()))

            header, claims = verify_jwt(headers["authorization"].removeprefix("bearer "), es256)
            assert header["kid"] == "ABC123DEFG"
            assert claims["iss"] == "DEF123GHIJ"
            assert len({r[1]["authorization"] for r in fake.requests}) == 1  # one provider token, reused

            clock.advance(130)
            sweep(client.app.state.runtime)
            for _ in range(250):
                if [d.status for d in deliveries(session, "apns")][4:] == ["sent", "sent"]:
                    break
                time.sleep(0.02)
            assert [d.status for d in deliveries(session, "apns")] == [
                "sent",
                "sent",
                "failed",
                "failed",
                "sent",
                "sent",
            ]


@pytest.mark.parametrize("kind", ["fcm", "apns"])
def test_a_provider_without_credentials_is_disabled_and_says_so(settings, caplog, kind):
    assert kind not in build_providers(settings)
    assert any(f"{kind} push disabled" in r.getMessage() for r in caplog.records)
