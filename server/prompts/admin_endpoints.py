"""/admin/api/v1/decisions and /deliveries: read-only, for support, with pseudonymous ids only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.api.paging import Page, PageDep
from server.core.const import ChannelKind, DeliveryStatus, Outcome
from server.core.datetimes import ApiDatetime
from server.prompts import admin_repository as repository
from server.prompts import support
from server.prompts.models import PromptDecision

router = APIRouter(tags=["admin: support"])


class DecisionPublic(BaseModel):
    id: int
    organisation_id: int
    site_id: int
    campaign_id: int | None
    variant_id: int | None
    person: str | None = Field(
        description="The person's pseudonym in this organisation (another organisation sees another one); "
        "never the device id"
    )
    outcome: str
    reason: str
    decided_at: datetime
    expires_at: datetime | None


class DeliveryPublic(BaseModel):
    id: int
    organisation_id: int
    decision_id: int
    person: str | None = Field(description="As in /decisions: the person's pseudonym in this organisation")
    channel_kind: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    created_at: datetime


def _person(runtime: RuntimeDep, organisation_id: int, decision: PromptDecision) -> str | None:
    return support.person(runtime.settings.secret_key.get_secret_value(), organisation_id, decision)


@router.get("/decisions", response_model=Page[DecisionPublic], operation_id="admin_list_decisions")
def list_decisions(
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    page: PageDep,
    organisation_id: Annotated[int | None, Query()] = None,
    site_id: Annotated[int | None, Query()] = None,
    campaign_id: Annotated[int | None, Query()] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    reason: Annotated[str | None, Query(max_length=32, description="A reason code, e.g. quiet_hours")] = None,
    since: Annotated[ApiDatetime | None, Query(description="Only decisions at or after this time")] = None,
    until: Annotated[ApiDatetime | None, Query(description="Only decisions before this time")] = None,
) -> Page[DecisionPublic]:
    """Why people at the caller's sites were or were not prompted (newest first)."""
    rows, total = support.decisions(
        principal,
        session,
        page,
        runtime.settings.secret_key.get_secret_value(),
        organisation_id=organisation_id,
        site_id=site_id,
        campaign_id=campaign_id,
        outcome=outcome,
        reason=reason,
        since=since,
        until=until,
    )
    items = [
        DecisionPublic(
            id=d.id,
            organisation_id=org_id,
            site_id=d.site_id,
            campaign_id=d.campaign_id,
            variant_id=d.variant_id,
            person=alias,
            outcome=d.outcome,
            reason=d.reason,
            decided_at=d.decided_at,
            expires_at=d.expires_at,
        )
        for d, org_id, alias in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/deliveries", response_model=Page[DeliveryPublic], operation_id="admin_list_deliveries")
def list_deliveries(
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    page: PageDep,
    organisation_id: Annotated[int | None, Query()] = None,
    decision_id: Annotated[int | None, Query()] = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    channel_kind: Annotated[ChannelKind | None, Query()] = None,
) -> Page[DeliveryPublic]:
    """How prompts at the caller's sites were delivered (newest first); no endpoints or push tokens."""
    rows, total = repository.deliveries(
        principal,
        session,
        page,
        organisation_id=organisation_id,
        decision_id=decision_id,
        status=status,
        channel_kind=channel_kind,
    )
    items = [
        DeliveryPublic(
            id=x.id,
            organisation_id=org_id,
            decision_id=x.decision_id,
            person=_person(runtime, org_id, d),
            channel_kind=x.channel_kind,
            status=x.status,
            attempts=x.attempts,
            next_attempt_at=x.next_attempt_at,
            sent_at=x.sent_at,
            last_error=x.last_error,
            created_at=x.created_at,
        )
        for x, d, org_id in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
