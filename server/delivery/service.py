"""The outbox sender: a pipeline woken right after a prompt commits, and by a sweep on a schedule for retries.

One thread owns the database side: each turn is one short transaction that records the sends finished since
the last turn and claims as many due rows as there is room for (one statement). A pool of sender threads
does the pushes and holds no database connection. At most `in_flight` sends are claimed and not yet
recorded, so a slow push service holds back new claims instead of letting leases run out in a queue."""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.core import const, metrics
from server.core.config import Settings
from server.core.const import DeliveryStatus, Outcome
from server.core.db import write_lock
from server.core.migrate import SchemaWait
from server.delivery import repository
from server.delivery.providers import Provider, build_providers
from server.delivery.providers.base import Message, Result, Target
from server.delivery.providers.base import Outcome as Sent
from server.delivery.repository import Due, Finish
from server.impact import tally
from server.prompts.tokens import SECRET_INFO, WAKE_INFO, collapse_id, landing_token

log = logging.getLogger("nahbar.delivery")

# Real push services answer in tens to hundreds of milliseconds: 100 pushes a second at 200 ms each need 20
# requests open at once. Twice as many claimed as can be sending keeps every sender busy without claiming far
# ahead of what is being sent.
SENDERS: Final = 32
IN_FLIGHT: Final = const.CLAIMS_PER_SENDER * SENDERS  # the lease's minimum counts on this (core/config.py)
# A finished send is recorded by the next claim, or after this long at most: a prompt's commit wakes the
# outbox at once, a finished push does not (a turn per push doubled the outbox's transactions).
RECORD_EVERY_S: Final = 0.05
# Session.info key of the outbox's sweep, for the scheduler's job (the prompts domain uses WAKE_INFO).
SWEEP_INFO: Final = "nahbar.outbox_sweep"


def backoff_s(attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
    """Exponential backoff with full jitter; a push service's Retry-After is a floor, never cut short."""
    ceiling = min(const.DELIVERY_BACKOFF_MAX_S, const.DELIVERY_BACKOFF_BASE_S * 2.0 ** max(0, attempts - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after_s is not None:
        delay = max(retry_after_s, 0.0) + rng.uniform(0, 1.0)
    return delay


@dataclass(frozen=True, slots=True)
class Attempt:
    """A send that was made, waiting to be recorded."""

    due: Due
    expires_at: datetime
    result: Result
    at: datetime


class Outbox:
    """Sends due deliveries. One per process; safe with any number of processes on the same database."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        providers: dict[str, Provider] | None = None,
        senders: int = SENDERS,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self.providers = build_providers(settings) if providers is None else providers
        self._secret = settings.secret_key.get_secret_value()
        self._base_url = settings.public_url.rstrip("/")
        self._wakeup = threading.Event()
        self._expire = threading.Event()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="nahbar-push")
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._max_in_flight = in_flight
        self._in_flight = 0  # claimed and handed to a sender, not yet recorded (the outbox thread's alone)
        self._finished: queue.SimpleQueue[Attempt] = queue.SimpleQueue()
        self._unrecorded: list[Attempt] = []  # kept over a turn that failed, recorded by the next
        self._write_lock = write_lock(sessions)
        self._schema = SchemaWait(sessions, log, "the outbox sender")

    def attach(self) -> None:
        """Hand the prompts domain the secret and the wake-up, and the scheduler the sweep, through every new
        session's info."""
        self._sessions.configure(
            info={SECRET_INFO: self._secret, WAKE_INFO: self.wake, SWEEP_INFO: self.sweep}
        )

    def start(self) -> None:
        self.attach()
        self._thread = threading.Thread(target=self._run, name="nahbar-outbox", daemon=True)
        self._thread.start()
        self.sweep()  # rows left by a previous process that are already due

    def stop(self) -> None:
        """Claim nothing more, let the sends under way finish, and record them."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(15)
        self._pool.shutdown(wait=True)
        left = self._unrecorded + self._drain()
        if left:
            try:
                with self._transaction() as session:
                    self._record(session, left)
            except Exception:  # their leases end and another process sends them again, same Topic
                log.exception("could not record %d sends at shutdown", len(left))
        for provider in self.providers.values():
            provider.close()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """Every outbox transaction writes; on SQLite it queues behind the process's other writers."""
        with self._write_lock, self._sessions.begin() as session:
            yield session

    def wake(self) -> None:
        """Something may be due now (a prompt committed)."""
        self._wakeup.set()

    def sweep(self) -> None:
        """Expire what is too late, then send what is due (retries whose time came, leases that ran out)."""
        self._expire.set()
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            woken = self._wakeup.wait(RECORD_EVERY_S if self._in_flight else None)
            if self._stopping.is_set():
                return
            if not woken and self._finished.empty():
                continue  # sends under way, none finished: nothing to record, nothing new to claim
            self._wakeup.clear()
            try:
                self._turn()
            except Exception:  # the database is away: retry the records in a second; the thread lives on
                if not self._schema.explains_failure():
                    log.exception("outbox sender failed")
                self._stopping.wait(1.0)
                self._wakeup.set()
            else:
                self._schema.succeeded()

    def _turn(self) -> None:
        """One transaction: record what finished, expire if swept, claim up to the room left."""
        self._unrecorded += self._drain()
        done = self._unrecorded
        room = self._max_in_flight - self._in_flight + len(done)
        expire = self._expire.is_set()
        if not done and not expire and room <= 0:
            return
        self._expire.clear()
        now = self._clock()
        try:
            with self._transaction() as session:  # on SQLite every turn writes first: no lock upgrade
                self._record(session, done)
                expired = repository.expire_due(session, now) if expire else 0
                due = repository.claim(session, now, self.settings.delivery_lease_seconds, room)
                sends = self._settle(session, due, now)
        except BaseException:
            if expire:
                self._expire.set()
            raise
        self._unrecorded = []
        self._in_flight += len(sends) - len(done)
        if expired:
            log.info("deliveries expired", extra={"count": expired})
        for due_row, provider in sends:
            self._pool.submit(self._push, due_row, provider)
        if room > 0 and len(due) == room:
            self.wake()  # there may be more due: claim again once room frees up or at once

    def _drain(self) -> list[Attempt]:
        finished = []
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                return finished

    def send_due(self, limit: int = const.DELIVERY_BATCH) -> int:
        """Expire, claim, send and record in the caller's thread (a process without a running outbox);
        returns how many rows were claimed."""
        now = self._clock()
        with self._transaction() as session:
            repository.expire_due(session, now)
            due = repository.claim(session, now, self.settings.delivery_lease_seconds, limit)
            sends = self._settle(session, due, now)
        attempts = list(self._pool.map(self._attempt, sends))
        if attempts:
            with self._transaction() as session:
                self._record(session, attempts)
        return len(due)

    def _settle(self, session: Session, due: Sequence[Due], now: datetime) -> list[tuple[Due, Provider]]:
        """Finish in the claim's transaction what must not be sent; return the rest with their providers."""
        sends, settled = [], []
        for row in due:
            provider = self.providers.get(row.channel_kind)
            if row.expires_at is not None and row.expires_at <= now:
                finish = Finish(row.claimed, {"status": DeliveryStatus.EXPIRED, "last_error": "expired"})
            elif row.endpoint is None or row.channel_retired:
                finish = _failed(row, "channel removed")
            elif row.title is None:
                finish = _failed(row, "the campaign's variant was removed")
            elif provider is None:
                finish = _failed(row, f"{row.channel_kind} push is not configured on this server")
            else:
                sends.append((row, provider))
                continue
            settled.append(finish)
            expired = finish.values["status"] == DeliveryStatus.EXPIRED
            metrics.DELIVERIES.labels(row.channel_kind, "expired" if expired else "not_sent").inc()
        repository.finish(session, settled)
        return sends

    def _push(self, row: Due, provider: Provider) -> None:
        self._finished.put(self._attempt((row, provider)))
        if self._finished.qsize() >= self._max_in_flight // 2:
            self._wakeup.set()  # half the room is waiting to be recorded: free it now

    def _attempt(self, send: tuple[Due, Provider]) -> Attempt:
        row, provider = send
        now = self._clock()
        expires_at = row.expires_at or now + timedelta(seconds=self.settings.prompt_ttl_seconds)
        try:
            message = Message(
                decision_id=row.decision_id,
                title=str(row.title),
                body=str(row.body),
                url=f"{self._base_url}/p/{landing_token(self._secret, row.decision_id)}",
                collapse_id=collapse_id(self._secret, row.subscriber_id, row.campaign_id),
                ttl_s=max(0, min(self.settings.push_ttl_seconds, int((expires_at - now).total_seconds()))),
                expires_at=expires_at,
                language=str(row.language),
                test=row.outcome == Outcome.TEST,
            )
            target = Target(int(row.channel_id or 0), str(row.endpoint), dict(row.keys or {}))
            result = provider.send(target, message)
        except Exception as exc:  # a provider bug must not leave the row claimed until the lease ends
            log.exception("push provider %s failed", row.channel_kind)
            result = Result(Sent.RETRY, f"{type(exc).__name__}")
        metrics.DELIVERIES.labels(row.channel_kind, result.outcome.value).inc()
        return Attempt(row, expires_at, result, self._clock())

    def _record(self, session: Session, attempts: Sequence[Attempt]) -> None:
        """Record sends' outcomes (fenced by the claim's attempts), retire gone channels."""
        finishes, gone = [], []
        for attempt in attempts:
            finishes.append(self._outcome(attempt))
            result, row = attempt.result, attempt.due
            if result.outcome is Sent.GONE and row.channel_id is not None:
                gone.append(row.channel_id)
                log.info(
                    "push channel retired",
                    extra={"channel_id": row.channel_id, "detail": result.detail[:100]},
                )
            log.info(
                "push %s",
                result.outcome.value,
                extra={
                    "delivery_id": row.claimed[0],
                    "attempts": row.claimed[1],
                    "detail": result.detail[:100],
                },
            )
        repository.finish(session, finishes)
        sent = [f.claimed for f in finishes if f.values.get("status") == DeliveryStatus.SENT]
        tally.pushes_sent(session, sent, self._clock())
        if gone:
            repository.retire_channels(session, gone, self._clock())
        for attempt in attempts:
            if attempt.result.keys_update and attempt.due.channel_id is not None:
                repository.update_channel_keys(session, attempt.due.channel_id, attempt.result.keys_update)

    def _outcome(self, attempt: Attempt) -> Finish:
        result, claimed, at = attempt.result, attempt.due.claimed, attempt.at
        detail = result.detail[:500]
        if result.outcome is Sent.SENT:
            return Finish(claimed, {"status": DeliveryStatus.SENT, "sent_at": at, "last_error": None})
        if result.outcome is Sent.RETRY and claimed[1] < const.DELIVERY_MAX_ATTEMPTS:
            retry_at = at + timedelta(seconds=backoff_s(claimed[1], result.retry_after_s, self._rng))
            if retry_at < attempt.expires_at:
                return Finish(claimed, {"next_attempt_at": retry_at, "last_error": detail})
            return Finish(claimed, {"status": DeliveryStatus.EXPIRED, "last_error": detail})
        return Finish(claimed, {"status": DeliveryStatus.FAILED, "last_error": detail})


def _failed(row: Due, detail: str) -> Finish:
    return Finish(row.claimed, {"status": DeliveryStatus.FAILED, "last_error": detail})


def outbox_of(sessions: sessionmaker[Session]) -> Callable[[], None] | None:
    """The sweep of the outbox attached to these sessions, if any."""
    info = sessions.kw.get("info") or {}
    sweep = info.get(SWEEP_INFO)
    return sweep if callable(sweep) else None
