"""Sightings in: a gateway's batch (validate item by item, resolve EIDs) or an iOS phone's own report; both
are stored idempotently, merged into one visit per person and site, and decided by the same policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.core.const import EventKind, Outcome
from server.core.errors import NahbarError, NotFound, ServiceUnavailable, validation_errors
from server.policy.service import decide_for_visit
from server.presence import repository
from server.presence.eid_index import EidIndex
from server.presence.models import ProximityEvent, Visit
from server.presence.schemas import BatchResult, EventIn, FieldError, RejectedEvent
from server.prompts.models import PromptDecision
from server.sites.models import Gateway, Site
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.presence")

MAX_CLOCK_AHEAD = timedelta(minutes=5)
LAST_SEEN_RESOLUTION = timedelta(seconds=30)


@dataclass(slots=True)
class IngestConfig:
    visit_gap: timedelta
    prompt_ttl_s: int


@dataclass(frozen=True, slots=True)
class Sighting:
    """One presence report about a known person: a gateway's event, or an iOS phone's own sighting."""

    key: str  # idempotency key: per gateway, or per subscriber for phone sightings
    source: Literal["gateway", "phone"]
    gateway_id: int | None
    kind: EventKind
    observed_at: datetime
    rssi: float | None = None
    distance_m: float | None = None
    dwell_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Recorded:
    """What storing a sighting did: nothing (a duplicate), or stored and possibly decided."""

    duplicate: bool
    decision: PromptDecision | None  # the decision this sighting led to, if it led to one
    stale: bool = False  # too old to decide on


@dataclass(slots=True)
class _Outcome:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)
    dropped: int = 0
    prompts: int = 0


def _parse(index: int, raw: dict[str, Any], now: datetime) -> EventIn | RejectedEvent:
    raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        item = EventIn.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(field=f"events[{index}].{e['field']}", message=e["message"])
            for e in validation_errors(exc.errors())
        ]
        return RejectedEvent(index=index, id=raw_id, errors=errors)
    if item.observed_at > now + MAX_CLOCK_AHEAD:
        error = FieldError(
            field=f"events[{index}].observed_at", message="lies in the future; check the clock"
        )
        return RejectedEvent(index=index, id=item.id, errors=[error])
    return item


def ingest(
    session: Session,
    gateway: Gateway,
    raw_events: list[dict[str, Any]],
    index: EidIndex,
    config: IngestConfig,
    now: datetime,
) -> BatchResult:
    """Process a batch. Valid items are kept even when others are rejected (partial batches)."""
    if not index.loaded:
        # Resolving now would drop every event as "not opted in"; a 503 makes the gateway keep and resend.
        raise ServiceUnavailable("The server is still loading opted-in phones' keys; retry in a few seconds.")
    site = session.get(Site, gateway.site_id)
    assert site is not None  # foreign key
    out = _Outcome()
    if gateway.last_seen_at is None or now - gateway.last_seen_at >= LAST_SEEN_RESOLUTION:
        # Fleet health needs minutes, not every batch: writing the gateway row each time serialised all of a
        # gateway's batches on that row lock inside their decision transactions.
        gateway.last_seen_at = now
    for position, raw in enumerate(raw_events):
        parsed = _parse(position, raw, now)
        if isinstance(parsed, RejectedEvent):
            out.rejected.append(parsed)
            continue
        _ingest_one(session, gateway, site, parsed, index, config, now, out)
    if out.rejected:
        log.warning("batch items rejected", extra={"gateway": gateway.id, "rejected": len(out.rejected)})
    return BatchResult(
        accepted=out.accepted, duplicates=out.duplicates, rejected=out.rejected, prompts=out.prompts
    )


def _ingest_one(
    session: Session,
    gateway: Gateway,
    site: Site,
    item: EventIn,
    index: EidIndex,
    config: IngestConfig,
    now: datetime,
    out: _Outcome,
) -> None:
    subscriber_id = index.resolve(bytes.fromhex(item.eid))
    subscriber = session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    if subscriber is None:
        # Not an opted-in phone (or one that withdrew): dropped, never stored.
        out.dropped += 1
        out.accepted.append(item.id)
        return
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
    recorded = record_sighting(session, subscriber, site, sighting, config, now)
    if recorded.duplicate:
        out.duplicates.append(item.id)
        return
    out.accepted.append(item.id)
    out.prompts += recorded.decision is not None and recorded.decision.outcome == Outcome.PROMPTED


def record_sighting(
    session: Session,
    subscriber: Subscriber,
    site: Site,
    sighting: Sighting,
    config: IngestConfig,
    now: datetime,
) -> Recorded:
    """Store a sighting idempotently, merge it into the person's visit at the site, and decide once per visit.

    Both paths come here: a gateway's event about a resolved EID and an iOS phone's own iBeacon sighting, so
    a person seen by a gateway and by their own phone at one site is one visit with one decision.
    """
    event_id = repository.insert_event(
        session,
        {
            "gateway_id": sighting.gateway_id,
            "idempotency_key": sighting.key,
            "site_id": site.id,
            "subscriber_id": subscriber.id,
            "kind": sighting.kind.value,
            "observed_at": sighting.observed_at,
            "received_at": now,
            "rssi": sighting.rssi,
            "distance_m": sighting.distance_m,
            "dwell_s": sighting.dwell_s,
            "source": sighting.source,
        },
    )
    if event_id is None:
        return Recorded(duplicate=True, decision=None)
    event = session.get_one(ProximityEvent, event_id)
    visit = _merge_into_visit(session, subscriber, site, sighting, config.visit_gap)
    event.visit_id = visit.id
    if sighting.kind is EventKind.EXIT or visit.decided_at is not None:
        return Recorded(duplicate=False, decision=None)
    if now - sighting.observed_at > timedelta(seconds=config.prompt_ttl_s):
        # Reported too late (an outbox after an outage, an offline phone): the person has moved on, and a
        # prompt now would be about a place they left. Counted, not decided; a fresh sighting still may be.
        return Recorded(duplicate=False, decision=None, stale=True)
    decision = decide_for_visit(session, subscriber, site, visit, event, config.prompt_ttl_s)
    return Recorded(duplicate=False, decision=decision)


def _merge_into_visit(
    session: Session, subscriber: Subscriber, site: Site, sighting: Sighting, gap: timedelta
) -> Visit:
    """One walk past one site is one visit, across EID rotations, the site's gateways and the own phone."""
    when = sighting.observed_at
    visit = repository.open_visit(session, subscriber.id, site.id, when - gap, until=when + gap)
    if visit is None:
        visit = Visit(
            subscriber_id=subscriber.id,
            site_id=site.id,
            started_at=sighting.observed_at,
            last_seen_at=sighting.observed_at,
        )
        session.add(visit)
        session.flush()
    visit.started_at = min(visit.started_at, sighting.observed_at)
    visit.last_seen_at = max(visit.last_seen_at, sighting.observed_at)
    visit.dwell_s = max(
        visit.dwell_s, sighting.dwell_s, (visit.last_seen_at - visit.started_at).total_seconds()
    )
    if sighting.distance_m is not None:
        visit.min_distance_m = min(visit.min_distance_m or sighting.distance_m, sighting.distance_m)
    if sighting.kind is EventKind.EXIT:
        visit.ended_at = max(visit.ended_at or sighting.observed_at, sighting.observed_at)
    elif visit.ended_at is not None and sighting.observed_at > visit.ended_at:
        visit.ended_at = None  # back again within the gap: the same visit goes on
    return visit


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
    decision: PromptDecision | None
    reason: str


def report_phone_sighting(
    session: Session,
    subscriber: Subscriber,
    region: tuple[str, int],
    sighting: Sighting,
    config: IngestConfig,
    now: datetime,
) -> PhoneOutcome:
    """An iOS phone saw a site's iBeacon region (proximity UUID, major): record it and run the same decision.

    A repeated delivery stores nothing and answers with the decision the first delivery led to, so an app that
    lost the answer gets the same prompt back.
    """
    if sighting.observed_at > now + MAX_CLOCK_AHEAD:
        raise SightingRejected(
            "Invalid request: observed_at lies in the future; check the phone's clock.",
            extra={"errors": [{"field": "observed_at", "message": "lies in the future; check the clock"}]},
        )
    ibeacon_uuid, major = region
    site = repository.site_by_ibeacon_region(session, ibeacon_uuid, major)
    if site is None:
        raise NotFound(
            f"No site uses the iBeacon region uuid={ibeacon_uuid} major={major}; "
            "stop monitoring it and refresh the app's list of regions."
        )
    recorded = record_sighting(session, subscriber, site, sighting, config, now)
    if recorded.duplicate:
        earlier = repository.decision_for_phone_sighting(session, subscriber.id, sighting.key)
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
