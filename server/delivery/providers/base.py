"""The interface every push provider implements, and what a send attempt can come to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import httpx

from server.core.const import PUSH_CONNECT_TIMEOUT_S


def push_timeout(seconds: float) -> httpx.Timeout:
    """Every request to a push service is bounded (NAHBAR_PUSH_TIMEOUT_SECONDS): a slow peer must not hold a
    prompt past its usefulness, nor past the delivery lease, after which it would be sent again."""
    return httpx.Timeout(seconds, connect=min(seconds, PUSH_CONNECT_TIMEOUT_S))


TIMEOUT: Final = push_timeout(10.0)  # the setting's default, for providers built without settings


class ClientPerThread:
    """An HTTP client for each sender thread. httpx's connection pool serialises its threads on one lock,
    and with dozens of senders they spent more time queueing for it than sending (profiled at 150 pushes
    a second); a pool per thread keeps its own keep-alive connections and needs no lock. An injected client
    is shared by all threads."""

    def __init__(self, make: Callable[[], httpx.Client], shared: httpx.Client | None = None) -> None:
        self._make = make
        self._shared = shared
        self._local = threading.local()
        self._all: list[httpx.Client] = [] if shared is None else [shared]
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        if self._shared is not None:
            return self._shared
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.close()


class ProviderUnavailable(Exception):
    """The provider has no (usable) credentials in the settings."""


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # 429, 5xx, network: try again later
    GONE = "gone"  # the subscription or token no longer exists: retire the channel
    FAILED = "failed"  # refused for good (bad request, auth): do not retry


@dataclass(frozen=True, slots=True)
class Target:
    """Where to push: the channel's endpoint (URL or token) and keys."""

    channel_id: int
    endpoint: str
    keys: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """What the phone shows. `collapse_id` is stable per person and campaign: a re-send replaces."""

    decision_id: int
    title: str
    body: str
    url: str
    collapse_id: str
    ttl_s: int
    expires_at: datetime
    language: str
    test: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.decision_id,
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": self.collapse_id,
            "expires_at": self.expires_at.isoformat(),
            "lang": self.language,
        }


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    detail: str = ""
    retry_after_s: float | None = None
    keys_update: dict[str, Any] = field(default_factory=dict)  # e.g. the APNs environment that answered


class Provider(Protocol):
    kind: str

    def send(self, target: Target, message: Message) -> Result: ...

    def close(self) -> None: ...


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def classify(response: httpx.Response, now: datetime) -> Result:
    """The common HTTP answer mapping: 2xx sent, 404/410 gone, 429/5xx retry, other 4xx failed."""
    status = response.status_code
    detail = f"HTTP {status} {response.text[:200]}".strip()
    if 200 <= status < 300:
        return Result(Outcome.SENT)
    if status in (404, 410):
        return Result(Outcome.GONE, detail)
    if status == 429 or status >= 500:
        return Result(Outcome.RETRY, detail, retry_after(response, now))
    return Result(Outcome.FAILED, detail)
