"""Read-only support queries over prompt decisions and deliveries, scoped through the site's organisation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from server.core.errors import RuleViolation
from server.core.paging import PageParams
from server.prompts.models import Delivery, PromptDecision
from server.sites.models import Site
from server.tenancy.scope import Principal

DECISION_SORT = {"id": PromptDecision.id, "decided_at": PromptDecision.decided_at}
DELIVERY_SORT = {"id": Delivery.id, "created_at": Delivery.created_at}


def _order(params: PageParams, sortable: Mapping[str, Any], default: Any) -> Any:
    if not params.sort:
        return default
    column = sortable.get(params.sort.removeprefix("-"))
    if column is None:
        raise RuleViolation(
            f"Cannot sort by {params.sort!r}; choose one of: {', '.join(sorted(sortable))}.",
            extra={"field": "sort"},
        )
    return column.desc() if params.sort.startswith("-") else column.asc()


def decisions(
    scope: Principal,
    session: Session,
    params: PageParams,
    *,
    organisation_id: int | None = None,
    site_id: int | None = None,
    campaign_id: int | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[Row[PromptDecision, int]], int]:
    query = (
        select(PromptDecision, Site.organisation_id)
        .join(Site, Site.id == PromptDecision.site_id)
        .where(scope.visible(Site.organisation_id))
    )
    for column, value in (
        (Site.organisation_id, organisation_id),
        (PromptDecision.site_id, site_id),
        (PromptDecision.campaign_id, campaign_id),
        (PromptDecision.outcome, outcome),
        (PromptDecision.reason, reason),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(PromptDecision.decided_at >= since)
    if until is not None:
        query = query.where(PromptDecision.decided_at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = _order(params, DECISION_SORT, PromptDecision.id.desc())
    rows = session.execute(query.order_by(order).limit(params.limit).offset(params.offset)).all()
    return list(rows), total


def deliveries(
    scope: Principal,
    session: Session,
    params: PageParams,
    *,
    organisation_id: int | None = None,
    decision_id: int | None = None,
    status: str | None = None,
    channel_kind: str | None = None,
) -> tuple[list[Row[Delivery, PromptDecision, int]], int]:
    query = (
        select(Delivery, PromptDecision, Site.organisation_id)
        .join(PromptDecision, PromptDecision.id == Delivery.decision_id)
        .join(Site, Site.id == PromptDecision.site_id)
        .where(scope.visible(Site.organisation_id))
    )
    for column, value in (
        (Site.organisation_id, organisation_id),
        (Delivery.decision_id, decision_id),
        (Delivery.status, status),
        (Delivery.channel_kind, channel_kind),
    ):
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = _order(params, DELIVERY_SORT, Delivery.id.desc())
    rows = session.execute(query.order_by(order).limit(params.limit).offset(params.offset)).all()
    return list(rows), total
