"""/admin/api/v1/sites/{site_id}/explain: the policy's chain of checks for one person at one site."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.core import const
from server.policy.explain import explain_for_admin

router = APIRouter(tags=["admin: policy"])


class CheckPublic(BaseModel):
    name: str
    passed: bool
    detail: str
    remaining: list[int] = Field(description="Campaign ids still eligible after this check")


class ExplainPublic(BaseModel):
    person: str | None = Field(
        description="The person's pseudonym in this organisation; null for a new person"
    )
    site_id: int
    at: datetime
    dwell_s: float
    prompted: bool
    reason: str
    campaign_id: int | None
    variant_id: int | None
    language: str | None
    checks: list[CheckPublic]


@router.get("/sites/{site_id}/explain", response_model=ExplainPublic, operation_id="admin_explain_decision")
def explain_decision(
    site_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    subscriber: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A pseudonym (p_...) from this organisation's /decisions, or a subscriber id; "
            "none: a new person, all scopes",
        ),
    ] = None,
    dwell_s: Annotated[float, Query(ge=0, description="Assume this dwell")] = float(
        const.DEFAULT_MIN_DWELL_S
    ),
) -> ExplainPublic:
    """Would this person be prompted at this site now, and if not, why: every check; sends nothing."""
    now = runtime.clock()
    secret = runtime.settings.secret_key.get_secret_value()
    site, decision, alias = explain_for_admin(session, principal, site_id, subscriber, dwell_s, now, secret)
    return ExplainPublic(
        person=alias,
        site_id=site.id,
        at=now,
        dwell_s=dwell_s,
        prompted=decision.prompted,
        reason=decision.reason,
        campaign_id=decision.campaign_id,
        variant_id=decision.variant_id,
        language=decision.language,
        checks=[
            CheckPublic(name=c.name, passed=c.passed, detail=c.detail, remaining=list(c.remaining))
            for c in decision.checks
        ],
    )
