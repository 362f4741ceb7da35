"""The webhook sender: claims due messages (a lease), posts them signed, records each attempt.

Signed by the Standard Webhooks specification with its maintained library: `webhook-id` (the same on every
retry, so a receiver drops a repeat), `webhook-timestamp` and `webhook-signature`, which carries a second
signature with the previous secret while a rotation's grace period lasts. Failures are retried with
exponential backoff; a message whose lease ran out (the process died mid-send) is sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from server.core.addresses import NotPublic, PublicOnlyTransport
from server.core.config import Settings
from server.core.db import write_lock
from server.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from server.webhooks.service import unseal

log = logging.getLogger("nahbar.webhooks")

SENDERS: Final = 8  # messages claimed and sent at once; a slow receiver holds one sender, not the others
MAX_ATTEMPTS: Final = 8
# Seconds to wait after the nth failed attempt (the Standard Webhooks' suggested schedule, shortened at the
# start): about a day and a half in all before a message is given up.
BACKOFF_S: Final = (5, 60, 300, 1_800, 7_200, 18_000, 36_000)
KEEP_LOG: Final = timedelta(days=30)  # attempts and finished messages are deleted after this
MAX_TURNS: Final = 25  # claims per run, so a run ends even while new messages keep coming
CONNECT_TIMEOUT_S: Final = 5.0


def lease_s(timeout_s: float) -> float:
    """A claim must outlast its send: connecting, the answer, and the record."""
    return min(timeout_s, CONNECT_TIMEOUT_S) + timeout_s + 5.0


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    attempts: int
    endpoint_id: int
    url: str
    enabled: bool
    message_id: str
    payload: str
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Result:
    due: _Due
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def system_wall_clock() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    """Sends due webhook messages; safe with any number of processes on one database."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], datetime] = system_wall_clock,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        # The signature's timestamp is what a receiver checks against its own clock: always the real time.
        self._wall_clock = wall_clock
        self._secret = settings.secret_key.get_secret_value()
        self._lease = timedelta(seconds=lease_s(settings.webhook_timeout_seconds))
        if transport is None and not settings.allow_private_webhook_hosts:
            transport = PublicOnlyTransport()
        timeout = settings.webhook_timeout_seconds
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            follow_redirects=False,  # a redirect could lead anywhere, past the address check
            trust_env=False,  # a proxy would connect for us, unchecked
            headers={"user-agent": "Nahbar-Webhooks/1"},
        )
        self._write_lock = write_lock(sessions)

    def close(self) -> None:
        self._client.close()

    def run(self) -> int:
        """Send what is due, turn after turn; returns how many attempts were made."""
        made = 0
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="nahbar-webhook") as pool:
            for _ in range(MAX_TURNS):
                due = self._claim()
                if not due:
                    break
                results = list(pool.map(self._send, due))
                self._record(results)
                made += len(results)
        return made

    def _claim(self) -> list[_Due]:
        now = self._clock()
        with self._sessions() as session:  # a read first: on SQLite a claim that finds nothing still writes
            waiting = session.scalar(
                select(WebhookMessage.id)
                .where(WebhookMessage.status == "pending", WebhookMessage.next_attempt_at <= now)
                .limit(1)
            )
        if waiting is None:
            return []
        with self._write_lock, self._sessions.begin() as session:
            due = (
                select(WebhookMessage.id)
                .where(WebhookMessage.status == "pending", WebhookMessage.next_attempt_at <= now)
                .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
                .limit(SENDERS)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claimed = dict(
                session.execute(
                    update(WebhookMessage)
                    .where(
                        WebhookMessage.id.in_(due.scalar_subquery()),
                        WebhookMessage.status == "pending",
                        WebhookMessage.next_attempt_at <= now,
                    )
                    .values(attempts=WebhookMessage.attempts + 1, next_attempt_at=now + self._lease)
                    .returning(WebhookMessage.id, WebhookMessage.attempts)
                ).all()
            )
            if not claimed:
                return []
            rows = session.execute(
                select(
                    WebhookMessage.id,
                    WebhookMessage.endpoint_id,
                    WebhookEndpoint.url,
                    WebhookEndpoint.enabled,
                    WebhookMessage.message_id,
                    WebhookMessage.payload,
                    WebhookEndpoint.secret_sealed,
                    WebhookEndpoint.previous_secret_sealed,
                    WebhookEndpoint.previous_valid_until,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
                .where(WebhookMessage.id.in_(sorted(claimed)))
                .order_by(WebhookMessage.id)
            ).all()
        due_rows = []
        for id_, endpoint_id, url, enabled, message_id, payload, sealed, previous, until in rows:
            keys = [unseal(self._secret, sealed)]
            if previous is not None and until is not None and until > now:
                keys.append(unseal(self._secret, previous))
            due_rows.append(
                _Due(id_, claimed[id_], endpoint_id, url, enabled, message_id, payload, tuple(keys))
            )
        return due_rows

    def headers(self, due: _Due, at: datetime) -> dict[str, str]:
        """The Standard Webhooks headers: one signature per valid secret, space-separated."""
        signatures = " ".join(Webhook(key).sign(due.message_id, at, due.payload) for key in due.secrets)
        return {
            "content-type": "application/json",
            "webhook-id": due.message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures,
        }

    def _send(self, due: _Due) -> _Result:
        if not due.enabled:
            return _Result(due, self._clock(), None, "the endpoint is disabled", 0)
        started = time.monotonic()
        try:
            answer = self._client.post(
                due.url, content=due.payload.encode(), headers=self.headers(due, self._wall_clock())
            )
            answer.read()
            status, error = answer.status_code, None if answer.is_success else f"HTTP {answer.status_code}"
        except NotPublic as exc:
            status, error = None, f"refused: {exc}"[:500]
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # a bug must not leave the message claimed until its lease ends
            log.exception("webhook send failed")
            status, error = None, type(exc).__name__
        return _Result(due, self._clock(), status, error, int((time.monotonic() - started) * 1000))

    def _record(self, results: list[_Result]) -> None:
        with self._write_lock, self._sessions.begin() as session:
            for result in results:
                due = result.due
                session.add(
                    WebhookAttempt(
                        message_id=due.id,
                        endpoint_id=due.endpoint_id,
                        attempt=due.attempts,
                        at=result.at,
                        status_code=result.status_code,
                        error=result.error,
                        duration_ms=result.duration_ms,
                    )
                )
                if result.ok:
                    values: dict[str, object] = {"status": "sent", "sent_at": result.at, "last_error": None}
                elif due.attempts >= MAX_ATTEMPTS or not due.enabled:
                    values = {"status": "failed", "last_error": result.error}
                else:
                    wait = BACKOFF_S[min(due.attempts, len(BACKOFF_S)) - 1]
                    values = {
                        "next_attempt_at": result.at + timedelta(seconds=wait),
                        "last_error": result.error,
                    }
                # Fenced by the claim's attempts: a claim that ran out and was taken again is the new one's.
                session.execute(
                    update(WebhookMessage)
                    .where(
                        WebhookMessage.id == due.id,
                        WebhookMessage.attempts == due.attempts,
                        WebhookMessage.status == "pending",
                    )
                    .values(**values)
                )
                log.info(
                    "webhook %s",
                    "sent" if result.ok else "failed",
                    extra={
                        "endpoint_id": due.endpoint_id,
                        "attempt": due.attempts,
                        "status": result.status_code,
                    },
                )

    def forget_old(self) -> None:
        """Delete the log and finished messages older than KEEP_LOG."""
        cutoff = self._clock() - KEEP_LOG
        with self._write_lock, self._sessions.begin() as session:
            session.execute(delete(WebhookAttempt).where(WebhookAttempt.at < cutoff))
            session.execute(
                delete(WebhookMessage).where(
                    or_(
                        and_(WebhookMessage.status == "sent", WebhookMessage.sent_at < cutoff),
                        and_(WebhookMessage.status == "failed", WebhookMessage.created_at < cutoff),
                    )
                )
            )
