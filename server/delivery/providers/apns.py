"""APNs over HTTP/2 with a token-based provider JWT (ES256), reused for its lifetime."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from server.core.config import Settings
from server.core.const import ChannelKind
from server.delivery.jwt import sign_es256
from server.delivery.providers.base import (
    TIMEOUT,
    ClientPerThread,
    Message,
    Outcome,
    ProviderUnavailable,
    Result,
    Target,
    push_timeout,
    retry_after,
)

# Apple refuses tokens older than an hour and throttles refreshes more often than every 20 minutes.
TOKEN_LIFETIME_S = 50 * 60
ENVIRONMENTS = ("production", "sandbox")


class ApnsProvider:
    kind = ChannelKind.APNS.value

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        key_id: str,
        team_id: str,
        topic: str,
        urls: dict[str, str],
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self._key, self._key_id, self._team_id, self._topic = key, key_id, team_id, topic
        self._urls = {env: url.rstrip("/") for env, url in urls.items()}
        # HTTP/2 only: over https by ALPN, over plain http (a local test peer) by prior knowledge. One client,
        # so one HTTP/2 connection, per sender thread: httpcore's sync HTTP/2 connection is not safe for
        # streams from several threads at once (stream ids are taken and HEADERS sent outside any lock, h2's
        # state is shared unguarded); the peer answers out-of-order or interleaved frames with GOAWAY
        # PROTOCOL_ERROR, which fails every send on the connection (encode/httpx#3072).
        self._clients = ClientPerThread(
            lambda: httpx.Client(http1=False, http2=True, timeout=timeout), client
        )
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApnsProvider:
        needed = {
            "NAHBAR_APNS_KEY_FILE": settings.apns_key_file,
            "NAHBAR_APNS_KEY_ID": settings.apns_key_id,
            "NAHBAR_APNS_TEAM_ID": settings.apns_team_id,
            "NAHBAR_APNS_TOPIC": settings.apns_topic,
        }
        missing = [name for name, value in needed.items() if not value]
        if missing:
            raise ProviderUnavailable(f"{', '.join(missing)} not set")
        try:
            key = load_pem_private_key(Path(str(settings.apns_key_file)).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"cannot read the APNs key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ProviderUnavailable("the APNs key is not a P-256 key (.p8)")
        urls = {"production": settings.apns_production_url, "sandbox": settings.apns_sandbox_url}
        ids = (str(settings.apns_key_id), str(settings.apns_team_id), str(settings.apns_topic))
        return cls(key, *ids, urls, timeout=push_timeout(settings.push_timeout_seconds))

    def _provider_token(self, *, renew: bool = False) -> str:
        with self._lock:
            now = time.time()
            if not renew and self._token is not None and now - self._token[1] < TOKEN_LIFETIME_S:
                return self._token[0]
            token = sign_es256(self._key, {"iss": self._team_id, "iat": int(now)}, kid=self._key_id)
            self._token = (token, now)
            return token

    def _post(self, environment: str, target: Target, message: Message, token: str) -> httpx.Response:
        body: dict[str, Any] = {
            "aps": {"alert": {"title": message.title, "body": message.body}, "sound": "default"},
            **{k: v for k, v in message.payload().items() if k not in {"title", "body"}},
        }
        return self._clients.get().post(
            f"{self._urls[environment]}/3/device/{target.endpoint}",
            json=body,
            headers={
                "authorization": f"bearer {token}",
                "apns-topic": self._topic,
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": str(int(message.expires_at.timestamp())),
                "apns-collapse-id": message.collapse_id,
            },
        )

    def send(self, target: Target, message: Message) -> Result:
        environment = str(target.keys.get("environment") or "production")
        if environment not in ENVIRONMENTS:
            environment = "production"
        try:
            response = self._post(environment, target, message, self._provider_token())
            reason = _reason(response)
            if reason == "ExpiredProviderToken":
                response = self._post(environment, target, message, self._provider_token(renew=True))
                reason = _reason(response)
            if reason == "BadDeviceToken":
                # Development builds get sandbox tokens: a token the app filed under the wrong environment
                # is alive in the other one. Only when both refuse it is the channel dead.
                other = "sandbox" if environment == "production" else "production"
                second = self._post(other, target, message, self._provider_token())
                if second.is_success:
                    return Result(Outcome.SENT, keys_update={"environment": other})
                if _reason(second) == "BadDeviceToken":
                    return Result(Outcome.GONE, "BadDeviceToken in production and sandbox")
                response, reason = second, _reason(second)
        except httpx.HTTPError as exc:
            return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:300])
        status = response.status_code
        if response.is_success:
            return Result(Outcome.SENT)
        detail = f"HTTP {status} {reason or ''}".strip()
        if status == 410 or reason in {"Unregistered", "DeviceTokenNotForTopic"}:
            return Result(Outcome.GONE, detail)
        if status == 429 or status >= 500:
            return Result(Outcome.RETRY, detail, retry_after(response, datetime.now(UTC)))
        return Result(Outcome.FAILED, detail)

    def close(self) -> None:
        self._clients.close()


def _reason(response: httpx.Response) -> str | None:
    if response.is_success:
        return None
    try:
        return str(response.json().get("reason")) or None
    except ValueError:
        return None
