"""Reading the audit trail: owners see their organisations' entries, the operator sees every entry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit.models import AuditEntry
from server.core.const import Role
from server.core.paging import PageParams, paginate
from server.tenancy.scope import Principal

AUDIT_SORT = {"id": AuditEntry.id, "at": AuditEntry.at}


def entries(
    scope: Principal,
    session: Session,
    params: PageParams,
    *,
    organisation_id: int | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEntry], int]:
    """Entries the caller may read, newest first; platform-wide ones (no organisation) are the operator's."""
    query = select(AuditEntry).where(scope.visible(AuditEntry.organisation_id, Role.OWNER))
    if organisation_id is not None:
        query = query.where(AuditEntry.organisation_id == organisation_id)
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return paginate(session, query, params, AUDIT_SORT, AuditEntry.id.desc())
