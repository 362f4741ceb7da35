"""Deliver the outbox to POST /gateway/v1/events in batches, through a bad link and a server that is down."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final

import httpx

from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/gateway/v1/events"
MAX_BATCH: Final = 500  # the server's limit per request
BACKOFF_BASE_S: Final = 1.0
BACKOFF_CAP_S: Final = 300.0
RETRY_AFTER_MAX_S: Final = 3600.0  # a broken header must not park a gateway for days
IDLE_POLL_S: Final = 2.0
# Connecting over bad Wi-Fi may take a while; a batch of 500 is ~100 kB.
REQUEST_TIMEOUT: Final = httpx.Timeout(30.0, connect=15.0)


class Outcome(StrEnum):
    EMPTY = "empty"  # nothing to send
    ACKED = "acked"  # 200: the whole batch is acknowledged
    PARTIAL = "partial"  # 422: rejected events set aside, the others acknowledged
    REFUSED = "refused"  # 400/404/409...: the batch is set aside
    TOO_LARGE = "too_large"  # 413: batch size halved, try again at once
    UNAUTHORIZED = "unauthorized"  # 401/403: sending stops until set_token()
    RETRY = "retry"  # 429, 5xx, timeout, no link, odd answer: everything kept, back off


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one flush did, and how long run() should wait before the next."""

    outcome: Outcome
    sent: int = 0
    acked: int = 0
    set_aside: int = 0
    status: int | None = None
    error: str | None = None
    delay: float = 0.0


@dataclass(slots=True)
class UplinkStats:
    """Counters for the heartbeat; events, except failures which counts failed requests."""

    sent: int = 0
    acked: int = 0
    set_aside: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    token_refused: bool = False
    batch_size: int = 0


def full_jitter(ceiling: float) -> float:
    """A uniformly random wait in [0, ceiling] (AWS "full jitter"), so gateways do not retry in lockstep."""
    return random.uniform(0.0, ceiling)  # noqa: S311 - spreading load, not security


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; the "-0000" form parses as naive
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def _body(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rejections(batch: Sequence[PresenceEvent], body: dict[str, Any]) -> dict[str, str] | None:
    """Map the 422 body's `rejected` items to our ids; None when the body is not a partial-batch answer."""
    items = body.get("rejected")
    if not isinstance(items, list) or not items:
        return None
    ids = {event.id for event in batch}
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        index, key = item.get("index"), item.get("id")
        # Index first: the server echoes id as null when the id itself was the invalid field.
        if isinstance(index, int) and 0 <= index < len(batch):
            key = batch[index].id
        if key not in ids:
            return None
        errors = item.get("errors") or []
        reason = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        out[key] = reason or "rejected"
    return out


class Uplink:
    """Sends the outbox to the server; `client.base_url` is the server, `token` the gateway's bearer token."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        outbox: Outbox,
        token: str,
        batch_size: int = 200,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[float], float] = full_jitter,
        idle_s: float = IDLE_POLL_S,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._token = token
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._jitter = jitter
        self._idle_s = idle_s
        self._wake = asyncio.Event()
        self._stats = UplinkStats(batch_size=max(1, min(batch_size, MAX_BATCH)))

    @property
    def batch_size(self) -> int:
        return self._stats.batch_size

    def stats(self) -> UplinkStats:
        """A snapshot of the counters."""
        return replace(self._stats)

    def set_token(self, token: str) -> None:
        """Use a new token (after re-enrolment) and resume sending."""
        self._token = token
        self._stats.token_refused = False
        self.wake()

    def wake(self) -> None:
        """Flush now instead of at the next poll (e.g. after the tracker put a batch)."""
        self._wake.set()

    async def flush_once(self) -> FlushResult:
        """Send one batch of the oldest events and settle the outbox by the server's answer."""
        if self._stats.token_refused:
            return FlushResult(Outcome.UNAUTHORIZED, error=self._stats.last_error)
        # Outbox calls fsync on an SD card; keep them off the event loop the scanner shares.
        batch = await asyncio.to_thread(self._outbox.peek, self.batch_size)
        if not batch:
            return FlushResult(Outcome.EMPTY)
        self._stats.sent += len(batch)
        try:
            answer = await self._client.post(
                EVENTS_PATH,
                json={"events": [event.to_wire() for event in batch]},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=REQUEST_TIMEOUT,
            )
        except httpx.HTTPError as exc:  # timeouts, refused connections, DNS, a link that drops mid-body
            return self._transient(len(batch), None, f"{type(exc).__name__}: {exc}", None)
        return await self._settle(batch, answer)

    async def _settle(self, batch: Sequence[PresenceEvent], answer: httpx.Response) -> FlushResult:
        status, body = answer.status_code, _body(answer)
        detail = f"HTTP {status}: {body.get('detail') or answer.reason_phrase}"
        if status == 200:
            # A captive portal or proxy also answers 200; only the server's own answer acknowledges.
            if not all(isinstance(body.get(key), list) for key in ("accepted", "duplicates")):
                return self._transient(len(batch), status, "HTTP 200 without a batch result", None)
            return await self._done(Outcome.ACKED, batch, {}, status)
        if status == 422 and (rejected := _rejections(batch, body)) is not None:
            log.warning("server rejected %d of %d events; set aside", len(rejected), len(batch))
            return await self._done(Outcome.PARTIAL, batch, rejected, status)
        if status in (401, 403):
            log.error(
                "token refused: re-enrol this gateway (beacon-agent enroll); events are kept (%s)", detail
            )
            self._failed(detail)
            self._stats.token_refused = True
            return FlushResult(Outcome.UNAUTHORIZED, sent=len(batch), status=status, error=detail)
        if status == 413 and len(batch) > 1:
            self._stats.batch_size = max(1, len(batch) // 2)
            log.warning("batch of %d too large; sending %d at a time", len(batch), self.batch_size)
            return FlushResult(Outcome.TOO_LARGE, sent=len(batch), status=status, error=detail)
        if 400 <= status < 500 and status != 429:
            # Resending the same batch would get the same answer forever: keep it aside for a person.
            log.error("server refused a batch of %d events for good (%s); set aside", len(batch), detail)
            self._failed(detail)
            result = await self._done(Outcome.REFUSED, batch, {event.id: detail for event in batch}, status)
            # Still back off: a proxy answering 404 for a while must not sweep the whole outbox aside at once.
            return replace(result, error=detail, delay=self._backoff(None))
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), self._clock())
        return self._transient(len(batch), status, detail, retry_after)

    async def _done(
        self, outcome: Outcome, batch: Sequence[PresenceEvent], rejected: dict[str, str], status: int
    ) -> FlushResult:
        acked = [event.id for event in batch if event.id not in rejected]
        if rejected:
            await asyncio.to_thread(self._outbox.set_aside, rejected)
        await asyncio.to_thread(self._outbox.ack, acked)
        self._stats.acked += len(acked)
        self._stats.set_aside += len(rejected)
        if outcome is not Outcome.REFUSED:
            self._stats.consecutive_failures = 0
        return FlushResult(outcome, len(batch), len(acked), len(rejected), status)

    def _failed(self, error: str) -> None:
        self._stats.failures += 1
        self._stats.consecutive_failures += 1
        self._stats.last_error = error

    def _backoff(self, retry_after: float | None) -> float:
        """Full-jitter exponential backoff over the consecutive failures; Retry-After is the minimum."""
        exponent = min(self._stats.consecutive_failures - 1, 30)  # 2**30 s is far past the cap already
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(exponent, 0))
        return max(self._jitter(ceiling), retry_after or 0.0)

    def _transient(self, sent: int, status: int | None, error: str, retry_after: float | None) -> FlushResult:
        self._failed(error)
        delay = self._backoff(retry_after)
        attempt = self._stats.consecutive_failures
        log.warning("delivery failed (%s); attempt %d, retrying in %.1f s", error, attempt, delay)
        return FlushResult(Outcome.RETRY, sent=sent, status=status, error=error, delay=delay)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush while there is work, poll when idle, back off on failures; return when `stop` is set."""
        while not stop.is_set():
            self._wake.clear()  # before the flush, so a wake() during it is not lost
            result = await self.flush_once()
            if result.outcome is Outcome.UNAUTHORIZED:
                await self._wait(None, stop, wakeable=True)  # only set_token() or stop ends this
            elif result.outcome is Outcome.EMPTY:
                await self._wait(self._idle_s, stop, wakeable=True)
            elif result.delay > 0:
                # Not wakeable: new events arriving must not cut a backoff short and hammer a sick server.
                await self._wait(result.delay, stop, wakeable=False)

    async def _wait(self, seconds: float | None, stop: asyncio.Event, *, wakeable: bool) -> None:
        """Sleep `seconds` (until woken when None), ending early on stop, or on wake() when wakeable."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        if seconds is not None:
            waiters.append(asyncio.ensure_future(self._sleep(seconds)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
