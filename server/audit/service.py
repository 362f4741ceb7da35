"""Writing the audit trail: every change through the admin API leaves who, what, before/after and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.audit.models import AuditEntry
from server.tenancy.scope import Principal


def record(
    session: Session,
    principal: Principal,
    action: str,
    entity: str,
    entity_id: int | str | None,
    organisation_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> AuditEntry:
    """Append one entry in the caller's transaction, so a change and its audit entry commit together."""
    entry = AuditEntry(
        at=now,
        actor_user_id=principal.user_id,
        actor=principal.actor,
        organisation_id=organisation_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )
    session.add(entry)
    return entry
