"""Sightings in: a gateway's batch (validate item by item, resolve EIDs) or an iOS phone's own report; both
are stored idempotently, merged into one visit per person and site, and decided by the same policy."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from server.api.deps import GatewayAtSite
from server.core import metrics
from server.core.config import Settings
from server.core.const import EventKind, Outcome
from server.core.errors import NahbarError, NotFound, ServiceUnavailable, Unauthorized, validation_errors
from server.policy.live import SiteRef
from server.policy.service import DecisionRecord
from server.presence import repository
from server.presence.eid_index import EidIndex
from server.presence.record import IngestConfig, Pending, Recorded, Sighting, record_sightings
from server.presence.schemas import BatchResult, EventIn, FieldError, RejectedEvent
from server.runtime import Runtime

__all__ = ["IngestConfig", "Sighting", "ingest", "ingest_config", "report_phone_sighting"]

# How a batch gets recorded: by the process's batcher, or alone in a session of its own.
Recorder = Callable[[Sequence[Pending], IngestConfig, Sequence[tuple[int, datetime]]], list[Recorded]]


def ingest_config(settings: Settings) -> IngestConfig:
    """How sightings are recorded, from the operator's settings."""
    return IngestConfig(
        timedelta(seconds=settings.visit_gap_seconds),
        settings.prompt_ttl_seconds,
        timedelta(days=settings.retention_days),
    )


def recorder(runtime: Runtime) -> Recorder:
    """The process's batcher, or (an in-memory database) a transaction of the batch's own."""
    return runtime.sightings.record if runtime.sightings is not None else in_session(runtime)


def in_session(runtime: Runtime) -> Recorder:
    """Record a batch alone, in its own transaction (where there is no batcher: an in-memory database)."""

    def record(
        items: Sequence[Pending], config: IngestConfig, seen: Sequence[tuple[int, datetime]]
    ) -> list[Recorded]:
        with runtime.sessions.begin() as session:
            return record_sightings(session, items, config, seen)

    return record


log = logging.getLogger("nahbar.presence")

MAX_CLOCK_AHEAD = timedelta(minutes=5)
LAST_SEEN_RESOLUTION = timedelta(seconds=30)


def time_window_error(observed_at: datetime, now: datetime, config: IngestConfig) -> str | None:
    """Why a sighting's time cannot be right, or None: ahead of the server's clock, or older than the raw
    data is kept (it would be purged unread, and a year-1 date breaks every calendar computation)."""
    if observed_at > now + MAX_CLOCK_AHEAD:
        return "lies in the future; check the clock"
    if observed_at < now - config.max_age:
        return f"is older than the {config.max_age.days}-day retention period; drop it"
    return None


def _parse(index: int, raw: dict[str, Any], now: datetime, config: IngestConfig) -> EventIn | RejectedEvent:
    raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        item = EventIn.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(field=f"events[{index}].{e['field']}", message=e["message"])
            for e in validation_errors(exc.errors())
        ]
        return RejectedEvent(index=index, id=raw_id, errors=errors)
    problem = time_window_error(item.observed_at, now, config)
    if problem is not None:
        error = FieldError(field=f"events[{index}].observed_at", message=problem)
        return RejectedEvent(index=index, id=item.id, errors=[error])
    return item


def ingest(
    gateway: GatewayAtSite,
    raw_events: list[dict[str, Any]],
    index: EidIndex,
    config: IngestConfig,
    now: datetime,
    record: Recorder,
    look_for_opt_ins: Callable[[float], object] | None = None,
) -> BatchResult:
    """Process a batch. Valid items are kept even when others are rejected (partial batches); EIDs that
    resolve to no opted-in phone are dropped unstored (and acknowledged, so the gateway forgets them).

    An EID may belong to someone who opted in through another worker a moment ago: before such an item is
    dropped, `look_for_opt_ins` brings the index up to the opt-ins committed before the batch arrived."""
    arrived = time.monotonic()
    if not index.loaded:
        # Resolving now would drop every event as "not opted in"; a 503 makes the gateway keep and resend.
        raise ServiceUnavailable("The server is still loading opted-in phones' keys; retry in a few seconds.")
    where = gateway.site
    rejected: list[RejectedEvent] = []
    valid: list[tuple[EventIn, uuid.UUID | None]] = []
    for position, raw in enumerate(raw_events):
        item = _parse(position, raw, now, config)
        if isinstance(item, RejectedEvent):
            rejected.append(item)
        else:
            valid.append((item, index.resolve(bytes.fromhex(item.eid))))
    if look_for_opt_ins is not None and any(subscriber is None for _, subscriber in valid):
        look_for_opt_ins(arrived)
        valid = [(item, s or index.resolve(bytes.fromhex(item.eid))) for item, s in valid]
    misses = sum(subscriber is None for _, subscriber in valid)
    metrics.EID_RESOLUTIONS.labels("hit").inc(len(valid) - misses)
    metrics.EID_RESOLUTIONS.labels("miss").inc(misses)
    order: list[tuple[str, int | None]] = []  # (event id, position among the pending) in the batch's order
    pending: list[Pending] = []
    for item, subscriber_id in valid:
        if subscriber_id is None:  # not an opted-in phone (or one that withdrew): dropped, never stored
            order.append((item.id, None))
            continue
        order.append((item.id, len(pending)))
        sighting = Sighting(
            key=item.id,
            source="gateway",
            gateway_id=gateway.id,
            kind=item.kind,
            observed_at=item.observed_at,
            rssi=item.rssi,
            distance_m=item.distance_m,
            dwell_s=item.dwell_s,
        )
        pending.append(Pending(subscriber_id, where, sighting, now))
    # Fleet health needs minutes, not every batch: writing the gateway row each time serialised all of a
    # gateway's batches on that row's lock.
    stale = gateway.last_seen_at is None or now - gateway.last_seen_at >= LAST_SEEN_RESOLUTION
    results = record(pending, config, [(gateway.id, now)] if stale else [])
    accepted: list[str] = []
    duplicates: list[str] = []
    prompts = 0
    for event_id, at in order:
        result = results[at] if at is not None else None
        if result is not None and result.duplicate:
            duplicates.append(event_id)
            continue
        accepted.append(event_id)
        decision = result.decision if result is not None else None
        prompts += decision is not None and decision.outcome == Outcome.PROMPTED
        if decision is not None:
            metrics.DECISIONS.labels(decision.outcome, decision.reason).inc()
    _count_events("gateway", len(raw_events), len(accepted), len(duplicates), len(rejected))
    if rejected:
        log.warning("batch items rejected", extra={"gateway": gateway.id, "rejected": len(rejected)})
    return BatchResult(accepted=accepted, duplicates=duplicates, rejected=rejected, prompts=prompts)


def _count_events(source: str, received: int, accepted: int, duplicate: int, rejected: int) -> None:
    metrics.EVENTS_RECEIVED.labels(source).inc(received)
    for result, count in (("accepted", accepted), ("duplicate", duplicate), ("rejected", rejected)):
        metrics.EVENTS.labels(source, result).inc(count)


class SightingRejected(NahbarError):
    status = 422
    code = "validation_failed"


class NoReason(StrEnum):
    """Why a stored phone sighting led to no new decision (policy decisions carry their own reason)."""

    DUPLICATE = "duplicate"  # an earlier delivery was stored and led to no decision either
    EXIT = "exit"  # leaving is never a moment to prompt
    VISIT_ALREADY_DECIDED = "visit_already_decided"  # one decision per visit
    STALE = "stale"  # observed longer ago than a prompt lives


@dataclass(frozen=True, slots=True)
class PhoneOutcome:
    stored: bool
    duplicate: bool
    decision: DecisionRecord | None
    reason: str


def report_phone_sighting(
    sessions: sessionmaker[Session],
    subscriber_id: uuid.UUID,
    region: tuple[str, int],
    sighting: Sighting,
    config: IngestConfig,
    now: datetime,
    record: Recorder,
) -> PhoneOutcome:
    """An iOS phone saw a site's iBeacon region (proximity UUID, major): record it and run the same decision.

    It is recorded the way gateways' events are (`record`: the batcher), in a transaction of its own that
    begins and commits in one thread; this holds no session across it. A repeated delivery stores nothing
    and answers with the decision the first delivery led to, so an app that lost the answer gets the same
    prompt back.
    """
    problem = time_window_error(sighting.observed_at, now, config)
    if problem is not None:
        _count_events("phone", 1, 0, 0, 1)
        raise SightingRejected(
            f"Invalid request: observed_at {problem}.",
            extra={"errors": [{"field": "observed_at", "message": problem}]},
        )
    ibeacon_uuid, major = region
    with sessions() as session:
        site = repository.site_by_ibeacon_region(session, ibeacon_uuid, major)
        where = SiteRef.of(site) if site is not None else None
    if where is None:
        raise NotFound(
            f"No site uses the iBeacon region uuid={ibeacon_uuid} major={major}; "
            "stop monitoring it and refresh the app's list of regions."
        )
    recorded = record([Pending(subscriber_id, where, sighting, now)], config, ())[0]
    if recorded.unknown:
        raise Unauthorized("Unknown device token; opt in again to get a new one.")
    _count_events("phone", 1, int(not recorded.duplicate), int(recorded.duplicate), 0)
    if recorded.decision is not None:
        metrics.DECISIONS.labels(recorded.decision.outcome, recorded.decision.reason).inc()
    if recorded.duplicate:
        with sessions() as session:
            found = repository.decision_for_phone_sighting(session, subscriber_id, sighting.key)
            earlier = DecisionRecord.of(found) if found is not None else None
        reason = earlier.reason if earlier is not None else NoReason.DUPLICATE
        return PhoneOutcome(stored=False, duplicate=True, decision=earlier, reason=reason)
    if recorded.decision is not None:
        return PhoneOutcome(
            stored=True, duplicate=False, decision=recorded.decision, reason=recorded.decision.reason
        )
    if sighting.kind is EventKind.EXIT:
        reason = NoReason.EXIT
    elif recorded.stale:
        reason = NoReason.STALE
    else:
        reason = NoReason.VISIT_ALREADY_DECIDED
    return PhoneOutcome(stored=True, duplicate=False, decision=None, reason=reason)
