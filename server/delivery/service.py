"""The outbox sender: woken right after a prompt commits, swept on a schedule for retries."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from server.core import const
from server.core.config import Settings
from server.core.const import DeliveryStatus, Outcome
from server.delivery import repository
from server.delivery.providers import Provider, build_providers
from server.delivery.providers.base import Message, Result, Target
from server.delivery.providers.base import Outcome as Sent
from server.prompts.tokens import SECRET_INFO, WAKE_INFO, collapse_id, landing_token

log = logging.getLogger("nahbar.delivery")


def backoff_s(attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
    """Exponential backoff with full jitter; a push service's Retry-After is a floor, never cut short."""
    ceiling = min(const.DELIVERY_BACKOFF_MAX_S, const.DELIVERY_BACKOFF_BASE_S * 2.0 ** max(0, attempts - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after_s is not None:
        delay = max(retry_after_s, 0.0) + rng.uniform(0, 1.0)
    return delay


class Outbox:
    """Sends due deliveries. One per process; safe with any number of processes on the same database."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        providers: dict[str, Provider] | None = None,
        senders: int = 8,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self.providers = build_providers(settings) if providers is None else providers
        self._secret = settings.secret_key.get_secret_value()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="nahbar-push")
        self._thread: threading.Thread | None = None
        self._rng = random.Random()

    def attach(self) -> None:
        """Hand the prompts domain the secret and the wake-up through every new session's info."""
        self._sessions.configure(info={SECRET_INFO: self._secret, WAKE_INFO: self.wake})

    def start(self) -> None:
        self.attach()
        self._thread = threading.Thread(target=self._run, name="nahbar-outbox", daemon=True)
        self._thread.start()
        self.wake()  # rows left by a previous process that are already due

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(15)
        self._pool.shutdown(wait=True)
        for provider in self.providers.values():
            provider.close()

    def wake(self) -> None:
        self._wakeup.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait()
            self._wakeup.clear()
            if self._stopping.is_set():
                return
            try:
                while self.send_due() and not self._stopping.is_set():
                    pass
            except Exception:  # the sweep retries; the sender thread must live on
                log.exception("outbox sender failed")

    def send_due(self, limit: int = const.DELIVERY_BATCH) -> int:
        """Expire what is too late, claim what is due, send it in parallel; returns how many were claimed."""
        now = self._clock()
        with self._sessions.begin() as session:
            expired = repository.expire_due(session, now)
            claimed = repository.claim(session, now, self.settings.delivery_lease_seconds, limit)
        if expired:
            log.info("deliveries expired", extra={"count": expired})
        for future in [self._pool.submit(self._deliver, c) for c in claimed]:
            future.result()
        return len(claimed)

    def _deliver(self, claimed: repository.Claimed) -> None:
        with self._sessions() as session:
            row = repository.load(session, claimed[0])
        now = self._clock()
        if row is None:
            return
        delivery, decision, channel, variant, campaign, _org, _subscriber = row
        provider = self.providers.get(delivery.channel_kind)
        with self._sessions.begin() as session:
            if decision.expires_at is not None and decision.expires_at <= now:
                repository.finish(session, claimed, status=DeliveryStatus.EXPIRED, last_error="expired")
                return
            if channel is None or channel.retired_at is not None:
                repository.finish(
                    session, claimed, status=DeliveryStatus.FAILED, last_error="channel removed"
                )
                return
            if provider is None:
                detail = f"{delivery.channel_kind} push is not configured on this server"
                repository.finish(session, claimed, status=DeliveryStatus.FAILED, last_error=detail)
                return
        expires_at = decision.expires_at or now + timedelta(seconds=self.settings.prompt_ttl_seconds)
        message = Message(
            decision_id=decision.id,
            title=variant.title,
            body=variant.body,
            url=f"{self.settings.public_url.rstrip('/')}/p/{landing_token(self._secret, decision.id)}",
            collapse_id=collapse_id(self._secret, decision.subscriber_id, decision.campaign_id),
            ttl_s=max(0, min(self.settings.push_ttl_seconds, int((expires_at - now).total_seconds()))),
            expires_at=expires_at,
            language=variant.language,
            test=decision.outcome == Outcome.TEST,
        )
        try:
            result = provider.send(Target(channel.id, channel.endpoint, dict(channel.keys or {})), message)
        except Exception as exc:  # a provider bug must not leave the row claimed until the lease ends
            log.exception("push provider %s failed", delivery.channel_kind)
            result = Result(Sent.RETRY, f"{type(exc).__name__}")
        self._record(claimed, channel.id, expires_at, result)

    def _record(
        self, claimed: repository.Claimed, channel_id: int, expires_at: datetime, result: Result
    ) -> None:
        now = self._clock()
        attempts = claimed[1]
        with self._sessions.begin() as session:
            if result.outcome is Sent.SENT:
                repository.finish(session, claimed, status=DeliveryStatus.SENT, sent_at=now, last_error=None)
                if result.keys_update:
                    repository.update_channel_keys(session, channel_id, result.keys_update)
            elif result.outcome is Sent.GONE:
                repository.finish(
                    session, claimed, status=DeliveryStatus.FAILED, last_error=result.detail[:500]
                )
                repository.retire_channel(session, channel_id, now)
                log.info(
                    "push channel retired", extra={"channel_id": channel_id, "detail": result.detail[:100]}
                )
            elif result.outcome is Sent.RETRY and attempts < const.DELIVERY_MAX_ATTEMPTS:
                at = now + timedelta(seconds=backoff_s(attempts, result.retry_after_s, self._rng))
                if at >= expires_at:
                    repository.finish(
                        session, claimed, status=DeliveryStatus.EXPIRED, last_error=result.detail[:500]
                    )
                else:
                    repository.finish(session, claimed, next_attempt_at=at, last_error=result.detail[:500])
            else:
                repository.finish(
                    session, claimed, status=DeliveryStatus.FAILED, last_error=result.detail[:500]
                )
        log.info(
            "push %s",
            result.outcome.value,
            extra={"delivery_id": claimed[0], "attempts": attempts, "detail": result.detail[:100]},
        )


def outbox_of(sessions: sessionmaker[Session]) -> Callable[[], None] | None:
    """The wake-up of the outbox attached to these sessions, if any."""
    info = sessions.kw.get("info") or {}
    wake = info.get(WAKE_INFO)
    return wake if callable(wake) else None
