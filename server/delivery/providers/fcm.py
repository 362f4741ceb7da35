"""FCM HTTP v1: an OAuth token from a service account (JWT bearer assertion), then one `send` per message."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from server.core.config import Settings
from server.core.const import ChannelKind
from server.delivery.jwt import sign_rs256
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
    retry_after,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GONE_CODES = frozenset({"UNREGISTERED"})


class FcmProvider:
    kind = ChannelKind.FCM.value

    def __init__(
        self,
        account: dict[str, Any],
        project_id: str,
        base_url: str,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ):
        key = load_pem_private_key(str(account["private_key"]).encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ProviderUnavailable("the FCM service account's private_key is not an RSA key")
        self._key = key
        self._email = str(account["client_email"])
        self._token_uri = str(account.get("token_uri") or "https://oauth2.googleapis.com/token")
        self._send_url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._clients = ClientPerThread(lambda: httpx.Client(timeout=timeout), client)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmProvider:
        if not settings.fcm_service_account_file:
            raise ProviderUnavailable("NAHBAR_FCM_SERVICE_ACCOUNT_FILE is not set")
        try:
            account = json.loads(Path(settings.fcm_service_account_file).read_text())
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"cannot read the FCM service account: {exc}") from exc
        project = settings.fcm_project_id or account.get("project_id")
        if not project or "private_key" not in account or "client_email" not in account:
            raise ProviderUnavailable("the FCM service account lacks project_id, client_email or private_key")
        timeout = push_timeout(settings.push_timeout_seconds)
        return cls(account, str(project), settings.fcm_base_url, timeout=timeout)

    def _access_token(self) -> str:
        """A cached OAuth access token, exchanged for a fresh one a minute before it ends."""
        with self._lock:
            now = time.time()
            if self._token is not None and self._token[1] - now > 60:
                return self._token[0]
            assertion = sign_rs256(
                self._key,
                {
                    "iss": self._email,
                    "scope": SCOPE,
                    "aud": self._token_uri,
                    "iat": int(now),
                    "exp": int(now) + 3600,
                },
            )
            answer = self._clients.get().post(
                self._token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion}
            )
            answer.raise_for_status()
            data = answer.json()
            self._token = (str(data["access_token"]), now + float(data.get("expires_in", 3600)))
            return self._token[0]

    def _body(self, token: str, message: Message) -> dict[str, Any]:
        data = {k: str(v) for k, v in message.payload().items()}
        return {
            "message": {
                "token": token,
                "notification": {"title": message.title, "body": message.body},
                "data": data,
                "android": {
                    "ttl": f"{message.ttl_s}s",
                    "priority": "high",
                    "collapse_key": message.collapse_id,
                    "notification": {"tag": message.collapse_id},
                },
                "apns": {
                    "headers": {
                        "apns-collapse-id": message.collapse_id,
                        "apns-expiration": str(int(message.expires_at.timestamp())),
                    }
                },
                "webpush": {
                    "headers": {"TTL": str(message.ttl_s), "Urgency": "high", "Topic": message.collapse_id}
                },
            }
        }

    def send(self, target: Target, message: Message) -> Result:
        try:
            token = self._access_token()
            response = self._clients.get().post(
                self._send_url,
                json=self._body(target.endpoint, message),
                headers={"Authorization": f"Bearer {token}"},
            )
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:300])
        if response.status_code == 401:  # the token was revoked or ended early: fetch a new one next time
            with self._lock:
                self._token = None
            return Result(Outcome.RETRY, "HTTP 401 from FCM")
        code = _error_code(response)
        now = datetime.now(UTC)
        if code in _GONE_CODES:
            return Result(Outcome.GONE, f"HTTP {response.status_code} {code}")
        if code in {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}:
            return Result(Outcome.RETRY, f"HTTP {response.status_code} {code}", retry_after(response, now))
        return classify(response, now)

    def close(self) -> None:
        self._clients.close()


def _error_code(response: httpx.Response) -> str | None:
    """FCM's `errorCode` from google.firebase.fcm.v1.FcmError, else the RPC status."""
    if response.is_success:
        return None
    try:
        error = response.json().get("error", {})
    except ValueError:
        return None
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    status = error.get("status")
    return str(status) if status else None
