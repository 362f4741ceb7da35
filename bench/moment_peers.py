"""The moment benchmark's two stamping points: a Web Push service (HTTPS, as every real one) that decrypts
each prompt with the phone's own subscription keys, and a relay between the gateway and the server that
stamps each of the gateway's requests as it arrives and as its answer comes back.

Both are real HTTP servers on loopback, in threads of the benchmark's process; every stamp is wall-clock
time (`time.time()`), the clock the agent stamps its events with.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import http_ece
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.delivery.jwt import b64url

_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "host", "content-length"})


# --- TLS for the push service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A throwaway certificate authority and a certificate for 127.0.0.1 it signed; `ca_file` is what the
    server trusts (SSL_CERT_FILE), `context` what the push service serves with."""

    ca_file: Path
    context: ssl.SSLContext


def make_tls(folder: Path) -> Tls:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nahbar bench push CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "push.pem", folder / "push.key"
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(Encoding.PEM))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Tls(ca_file, context)


# --- the push service -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """What a browser keeps for a PushSubscription: its P-256 key pair and the 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Subscription:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


@dataclass(frozen=True)
class Push:
    phone: int
    arrived: float  # its request line and headers are in
    title: str | None  # of the decrypted payload; None when it did not decrypt
    urgency: str | None


class PushService:
    """Answers 201 to POST /push/<phone>, after decrypting the payload with that phone's keys."""

    def __init__(self, tls: Tls) -> None:
        self.subscriptions: dict[int, Subscription] = {}
        self.pushes: list[Push] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                phone = int(self.path.rsplit("/", 1)[-1])
                service.received(phone, arrived, body, self.headers.get("urgency"))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = tls.context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="push-service", daemon=True)
        self._thread.start()

    def received(self, phone: int, arrived: float, body: bytes, urgency: str | None) -> None:
        subscription = self.subscriptions.get(phone)
        title = None
        if subscription is not None:
            try:
                plain = http_ece.decrypt(
                    body,
                    private_key=subscription.private_key,
                    auth_secret=subscription.auth,
                    version="aes128gcm",
                )
                title = str(json.loads(plain)["title"])
            except Exception:  # a push that does not decrypt is counted as such, not as a prompt
                title = None
        with self._lock:
            self.pushes.append(Push(phone, arrived, title, urgency))

    def snapshot(self) -> list[Push]:
        with self._lock:
            return list(self.pushes)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the relay between the gateway and the server -------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request of the gateway: when it was in, when the server's answer was, and the events it carried."""

    method: str
    path: str
    received: float
    answered: float
    status: int
    events: tuple[dict[str, Any], ...]


class Relay:
    """Passes the gateway's requests to the server unchanged (keep-alive both ways) and stamps them."""

    def __init__(self, upstream_port: int) -> None:
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream: http.client.HTTPConnection | None = None

            def _forward(self) -> None:
                received = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                answer, payload = self._ask(body, headers)
                answered = time.time()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                events: tuple[dict[str, Any], ...] = ()
                if self.command == "POST" and self.path.endswith("/events"):
                    events = tuple(json.loads(body)["events"])
                relay.record(Exchange(self.command, self.path, received, answered, answer.status, events))

            def _ask(self, body: bytes, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
                for attempt in (1, 2):
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                    try:
                        self.upstream.request(self.command, self.path, body or None, headers)
                        answer = self.upstream.getresponse()
                        return answer, answer.read()
                    except (http.client.RemoteDisconnected, ConnectionError):
                        # The server closed an idle keep-alive connection: once more on a new one.
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            do_GET = do_POST = _forward  # noqa: N815 - the stdlib's names

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="relay", daemon=True)
        self._thread.start()

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
