"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm message encryption (RFC 8291)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from server.core.addresses import NotPublic, PublicOnlyTransport
from server.core.config import Settings
from server.core.const import ChannelKind
from server.delivery.jwt import b64url, b64url_decode, sign_es256
from server.delivery.providers.base import (
    TIMEOUT,
    ClientPerThread,
    Message,
    Outcome,
    ProviderUnavailable,
    Result,
    Target,
    classify,
    push_timeout,
)

VAPID_LIFETIME_S = 12 * 3600  # RFC 8292: at most 24 h; re-signed well before it ends
_RECORD_SIZE = 4096


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key as PEM, or as the raw base64url private scalar that web-push tools print."""
    if "-----BEGIN" in text:
        key = load_pem_private_key(text.encode(), password=None)
    else:
        key = ec.derive_private_key(int.from_bytes(b64url_decode(text.strip()), "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ProviderUnavailable("NAHBAR_VAPID_PRIVATE_KEY is not a P-256 key")
    return key


class WebPushProvider:
    kind = ChannelKind.WEBPUSH.value

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        client: httpx.Client | None = None,
        *,
        public_only: bool = True,
        timeout: httpx.Timeout = TIMEOUT,
    ):
        self._key = key
        self._subject = subject
        self.public_key = b64url(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
        # The endpoint is the phone's word, so by default a connection goes to public addresses only.
        self._clients = ClientPerThread(
            lambda: httpx.Client(timeout=timeout, transport=PublicOnlyTransport() if public_only else None),
            client,
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> WebPushProvider:
        if settings.vapid_private_key is None or not settings.vapid_subject:
            raise ProviderUnavailable("NAHBAR_VAPID_PRIVATE_KEY and NAHBAR_VAPID_SUBJECT are not set")
        key = load_vapid_key(settings.vapid_private_key.get_secret_value())
        provider = cls(
            key,
            settings.vapid_subject,
            public_only=not settings.allow_private_push_hosts,
            timeout=push_timeout(settings.push_timeout_seconds),
        )
        if settings.vapid_public_key and settings.vapid_public_key.rstrip("=") != provider.public_key:
            raise ProviderUnavailable("NAHBAR_VAPID_PUBLIC_KEY does not belong to NAHBAR_VAPID_PRIVATE_KEY")
        return provider

    def _vapid(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()  # push services check the real time, not the app's injected clock
        with self._lock:
            cached = self._tokens.get(audience)
            if cached is not None and cached[1] - now > 3600:
                return cached[0]
            expires = int(now) + VAPID_LIFETIME_S
            token = sign_es256(self._key, {"aud": audience, "exp": expires, "sub": self._subject})
            self._tokens[audience] = (token, expires)
            return token

    def send(self, target: Target, message: Message) -> Result:
        try:
            ua_public = b64url_decode(str(target.keys["p256dh"]))
            auth = b64url_decode(str(target.keys["auth"]))
        except (KeyError, ValueError) as exc:
            return Result(Outcome.GONE, f"subscription keys unusable: {type(exc).__name__}")
        body = http_ece.encrypt(
            json.dumps(message.payload(), separators=(",", ":")).encode(),
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=ua_public,
            auth_secret=auth,
            version="aes128gcm",
            rs=_RECORD_SIZE,
        )
        headers = {
            "Authorization": f"vapid t={self._vapid(target.endpoint)}, k={self.public_key}",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(message.ttl_s),
            "Urgency": "high",
            "Topic": message.collapse_id,
        }
        try:
            response = self._clients.get().post(target.endpoint, content=body, headers=headers)
        except NotPublic as exc:  # asking again will not make the address public
            return Result(Outcome.FAILED, f"refused: {exc}; this server pushes to public addresses only")
        except httpx.HTTPError as exc:
            return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:300])
        return classify(response, datetime.now(UTC))

    def close(self) -> None:
        self._clients.close()
