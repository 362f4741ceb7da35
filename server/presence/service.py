"""Ingest a gateway's batch: validate item by item, resolve EIDs, store idempotently, merge visits, decide."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.core.const import EventKind
from server.core.errors import validation_errors
from server.policy.service import decide_for_visit
from server.presence import repository
from server.presence.eid_index import EidIndex
from server.presence.models import ProximityEvent, Visit
from server.presence.schemas import BatchResult, EventIn, FieldError, RejectedEvent
from server.sites.models import Gateway, Site
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.presence")

MAX_CLOCK_AHEAD = timedelta(minutes=5)


@dataclass(slots=True)
class IngestConfig:
    visit_gap: timedelta
    prompt_ttl_s: int


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
    site = session.get(Site, gateway.site_id)
    assert site is not None  # foreign key
    out = _Outcome()
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
    event_id = repository.insert_event(
        session,
        {
            "gateway_id": gateway.id,
            "idempotency_key": item.id,
            "site_id": site.id,
            "subscriber_id": subscriber.id,
            "kind": item.kind.value,
            "observed_at": item.observed_at,
            "received_at": now,
            "rssi": item.rssi,
            "distance_m": item.distance_m,
            "dwell_s": item.dwell_s,
        },
    )
    if event_id is None:
        out.duplicates.append(item.id)
        return
    out.accepted.append(item.id)
    event = session.get_one(ProximityEvent, event_id)
    visit = _merge_into_visit(session, subscriber, site, item, config.visit_gap)
    event.visit_id = visit.id
    if item.kind is not EventKind.EXIT and visit.decided_at is None:
        decision = decide_for_visit(session, subscriber, site, visit, event, config.prompt_ttl_s)
        out.prompts += decision.outcome == "prompted"


def _merge_into_visit(
    session: Session, subscriber: Subscriber, site: Site, item: EventIn, gap: timedelta
) -> Visit:
    """One walk past one site is one visit, across EID rotations and all of the site's gateways."""
    visit = repository.open_visit(session, subscriber.id, site.id, item.observed_at - gap)
    if visit is None:
        visit = Visit(
            subscriber_id=subscriber.id,
            site_id=site.id,
            started_at=item.observed_at,
            last_seen_at=item.observed_at,
        )
        session.add(visit)
        session.flush()
    visit.last_seen_at = max(visit.last_seen_at, item.observed_at)
    visit.dwell_s = max(visit.dwell_s, item.dwell_s, (visit.last_seen_at - visit.started_at).total_seconds())
    if item.distance_m is not None:
        visit.min_distance_m = min(visit.min_distance_m or item.distance_m, item.distance_m)
    visit.ended_at = item.observed_at if item.kind is EventKind.EXIT else None
    return visit
