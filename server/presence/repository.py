"""Idempotent event storage and visit lookup; works the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.presence.models import ProximityEvent
from server.prompts.models import PromptDecision
from server.sites.models import Site


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
