"""Writing the audit trail: every change through the admin API leaves who, what, before/after and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.audit import repository
from server.audit.models import AuditEntry
from server.core.const import Role
from server.core.errors import Forbidden
from server.core.paging import PageParams
from server.tenancy.scope import Principal


def entries(
    scope: Principal,
    session: Session,
    page: PageParams,
    *,
    organisation_id: int | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEntry], int]:
    """The audit trail of the organisations the caller owns (everything, for the operator), newest first."""
    if organisation_id is not None:
        scope.require(organisation_id, Role.OWNER)  # 404 if not theirs, 403 if not an owner
    elif not scope.is_operator and not scope.organisation_ids(Role.OWNER):
        raise Forbidden("The audit log is for the organisation's owners.")
    return repository.entries(
        scope, session, page, organisation_id=organisation_id, entity=entity, entity_id=entity_id, since=since
    )


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
