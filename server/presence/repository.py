"""Idempotent event storage and visit lookup; works the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.presence.models import PHONE_ROWS, ProximityEvent, Visit
from server.prompts.models import PromptDecision
from server.sites.models import Site


def insert_event(session: Session, values: dict[str, Any]) -> int | None:
    """Store the event unless its idempotency key is known; return its new id, or None if duplicate.

    A gateway's key is unique per gateway, a phone's (`source="phone"`, no gateway) per subscriber.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ProximityEvent).values(**values)
    if values.get("source") == "phone":
        # The predicate must be a literal: PostgreSQL infers a partial index only from a provable WHERE.
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["subscriber_id", "idempotency_key"], index_where=text(PHONE_ROWS)
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["gateway_id", "idempotency_key"])
    return session.scalar(stmt.returning(ProximityEvent.id))


def open_visit(
    session: Session, subscriber_id: uuid.UUID, site_id: int, since: datetime, until: datetime | None = None
) -> Visit | None:
    """The person's visit at this site seen at or after `since` (any gateway of the site, any EID), and
    begun at or before `until` when given (a late report must not join a later visit)."""
    query = select(Visit).where(
        Visit.subscriber_id == subscriber_id, Visit.site_id == site_id, Visit.last_seen_at >= since
    )
    if until is not None:
        query = query.where(Visit.started_at <= until)
    return session.scalar(query.order_by(Visit.last_seen_at.desc()).limit(1))


def site_by_ibeacon_region(session: Session, ibeacon_uuid: str, major: int) -> Site | None:
    """The site whose iBeacon region (proximity UUID, major) an iOS phone reported; UUIDs compare caseless."""
    return session.scalar(
        select(Site)
        .where(func.lower(Site.ibeacon_uuid) == ibeacon_uuid.lower(), Site.ibeacon_major == major)
        .order_by(Site.id)
        .limit(1)
    )


def decision_for_phone_sighting(
    session: Session, subscriber_id: uuid.UUID, key: str
) -> PromptDecision | None:
    """The decision an earlier delivery of this phone sighting led to, if it led to one."""
    return session.scalar(
        select(PromptDecision)
        .join(ProximityEvent, ProximityEvent.id == PromptDecision.event_id)
        .where(
            ProximityEvent.subscriber_id == subscriber_id,
            ProximityEvent.idempotency_key == key,
            ProximityEvent.source == "phone",
        )
        .limit(1)
    )
