"""Idempotent event storage and visit lookup; works the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.presence.models import ProximityEvent, Visit


def insert_event(session: Session, values: dict[str, Any]) -> int | None:
    """Store the event unless (gateway, idempotency key) exists; return its new id, or None if duplicate."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(ProximityEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["gateway_id", "idempotency_key"])
        .returning(ProximityEvent.id)
    )
    return session.scalar(stmt)


def open_visit(session: Session, subscriber_id: uuid.UUID, site_id: int, since: datetime) -> Visit | None:
    """The person's visit at this site seen at or after `since` (any gateway of the site, any EID)."""
    return session.scalar(
        select(Visit)
        .where(Visit.subscriber_id == subscriber_id, Visit.site_id == site_id, Visit.last_seen_at >= since)
        .order_by(Visit.last_seen_at.desc())
        .limit(1)
    )
