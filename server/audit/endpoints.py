"""/admin/api/v1/audit: who changed what, before and after, and when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import CurrentAdmin, SessionDep
from server.api.paging import Page, PageDep
from server.audit import service
from server.audit.schemas import AuditEntryPublic
from server.core.datetimes import ApiDatetime

router = APIRouter(tags=["admin: audit"])


@router.get("/audit", response_model=Page[AuditEntryPublic], operation_id="admin_list_audit")
def list_audit(
    principal: CurrentAdmin,
    session: SessionDep,
    page: PageDep,
    organisation_id: Annotated[int | None, Query(description="Only this organisation's")] = None,
    entity: Annotated[str | None, Query(max_length=64, description="e.g. campaign, site, gateway")] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[ApiDatetime | None, Query(description="Only entries at or after this time")] = None,
) -> Page[AuditEntryPublic]:
    """The audit trail of the organisations the caller owns (everything, for the operator)."""
    rows, total = service.entries(
        principal,
        session,
        page,
        organisation_id=organisation_id,
        entity=entity,
        entity_id=entity_id,
        since=since,
    )
    return Page(
        items=[AuditEntryPublic.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
