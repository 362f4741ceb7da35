"""Support lists for admins: decisions and deliveries at the caller's sites, naming people by pseudonym."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.core.paging import PageParams
from server.core.security import pseudonym
from server.prompts import admin_repository as repository
from server.prompts.models import PromptDecision
from server.tenancy.scope import Principal


def person(secret_key: str, organisation_id: int, decision: PromptDecision) -> str | None:
    """The person's pseudonym in this organisation (another sees another one); never the device id."""
    if decision.subscriber_id is None:
        return None
    return pseudonym(secret_key, organisation_id, decision.subscriber_id)


def decisions(
    scope: Principal, session: Session, page: PageParams, secret_key: str, **filters: Any
) -> tuple[list[tuple[PromptDecision, int, str | None]], int]:
    """Why people at the caller's sites were or were not asked, newest first: (decision, organisation,
    pseudonym). Filters: organisation_id, site_id, campaign_id, outcome, reason, since, until."""
    rows, total = repository.decisions(scope, session, page, **filters)
    return [(d, org_id, person(secret_key, org_id, d)) for d, org_id in rows], total
