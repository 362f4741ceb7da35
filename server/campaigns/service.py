"""Campaign rules: who may change what, validation before running, status changes and their audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.audit import service as audit
from server.campaigns import repository, rules
from server.campaigns.models import Campaign, CampaignVariant
from server.campaigns.schemas import CampaignCreate, CampaignPublic, CampaignUpdate, VariantIn, VariantPublic
from server.core.const import CampaignStatus, Role
from server.core.errors import Conflict, NotFound, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.core.versions import claim_version, expected_version
from server.tenancy import repository as tenancy
from server.tenancy.scope import Principal

_SCALARS = (
    "name",
    "kind",
    "priority",
    "starts_at",
    "ends_at",
    "daily_from",
    "daily_until",
    "cta_url",
    "daily_budget",
    "min_dwell_s",
    "max_dwell_s",
)


def visible_campaign(scope: Principal, session: Session, campaign_id: int) -> Campaign:
    campaign = repository.campaign(scope, session, campaign_id)
    if campaign is None:
        raise NotFound("No such campaign, or it is not yours.")
    return campaign


def list_campaigns(
    scope: Principal,
    session: Session,
    page: PageParams,
    *,
    organisation_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    site_id: int | None = None,
    q: str | None = None,
) -> tuple[list[Campaign], int]:
    """The caller's campaigns, filtered."""
    return repository.campaigns(
        scope, session, page, organisation_id=organisation_id, status=status, kind=kind, site_id=site_id, q=q
    )


def public(session: Session, campaign: Campaign) -> CampaignPublic:
    fields = {name: getattr(campaign, name) for name in _SCALARS}
    return CampaignPublic(
        id=campaign.id,
        organisation_id=campaign.organisation_id,
        status=CampaignStatus(campaign.status),
        site_ids=repository.site_ids(session, campaign.id),
        created_at=campaign.created_at,
        variants=[VariantPublic.model_validate(v) for v in repository.variants(session, campaign.id)],
        version=campaign.version,
        **fields,
    )


def _snap(session: Session, campaign: Campaign) -> dict[str, Any]:
    return public(session, campaign).model_dump(mode="json")


def _set_sites(scope: Principal, session: Session, campaign: Campaign, ids: list[int]) -> None:
    found = {s.id for s in repository.org_sites(scope, session, campaign.organisation_id, ids)}
    unknown = sorted(set(ids) - found)
    if unknown:
        raise RuleViolation(f"Unknown sites {unknown} for this organisation.", extra={"field": "site_ids"})
    repository.replace_sites(session, campaign.id, ids)


def _set_variants(session: Session, campaign: Campaign, variants: list[VariantIn]) -> None:
    keys = [(v.language, v.label) for v in variants]
    if len(keys) != len(set(keys)):
        raise RuleViolation("Two variants share a language and label.", extra={"field": "variants"})
    rows = [CampaignVariant(campaign_id=campaign.id, **v.model_dump()) for v in variants]
    repository.replace_variants(session, campaign.id, rows)


def readiness(session: Session, scope: Principal, campaign: Campaign, now: datetime) -> list[rules.Problem]:
    """What keeps the campaign from running now (empty: it may be activated): the activation checklist."""
    org = tenancy.organisation(scope, session, campaign.organisation_id)
    if org is None:
        raise NotFound("No such campaign, or it is not yours.")
    sites = repository.org_sites(
        scope, session, campaign.organisation_id, repository.site_ids(session, campaign.id)
    )
    variants = repository.variants(session, campaign.id)
    return rules.readiness(campaign, org, sites, variants, now, tenancy.platform_settings(session))


def _check(session: Session, scope: Principal, campaign: Campaign, now: datetime, what: str) -> None:
    """Limits always; the full readiness rules whenever the campaign is (or is about to be) active."""
    if campaign.status != CampaignStatus.ACTIVE:
        rules.raise_if(rules.limits(campaign, tenancy.platform_settings(session)), what)
        return
    rules.raise_if(readiness(session, scope, campaign, now), what)


def create(session: Session, scope: Principal, body: CampaignCreate, now: datetime) -> Campaign:
    if tenancy.organisation(scope, session, body.organisation_id) is None:
        raise NotFound("No such organisation, or it is not yours.")
    scope.require(body.organisation_id, Role.EDITOR)
    campaign = Campaign(
        organisation_id=body.organisation_id,
        status=CampaignStatus.DRAFT.value,
        created_at=now,
        **body.model_dump(include=set(_SCALARS)),
    )
    session.add(campaign)
    session.flush()
    _set_sites(scope, session, campaign, body.site_ids)
    _set_variants(session, campaign, body.variants)
    session.flush()
    _check(session, scope, campaign, now, "The campaign breaks a rule")
    audit.record(
        session,
        scope,
        "campaign.create",
        "campaign",
        campaign.id,
        campaign.organisation_id,
        None,
        _snap(session, campaign),
        now,
    )
    return campaign


def update(
    session: Session,
    scope: Principal,
    campaign_id: int,
    body: CampaignUpdate,
    if_match: str | None,
    now: datetime,
) -> Campaign:
    campaign = visible_campaign(scope, session, campaign_id)
    scope.require(campaign.organisation_id, Role.EDITOR)
    if campaign.status == CampaignStatus.ENDED:
        raise Conflict("An ended campaign cannot change; copy it into a new one.")
    before = _snap(session, campaign)
    claim_version(session, campaign, if_match)
    changes = body.model_dump(exclude_unset=True)
    for name in _SCALARS:
        if name in changes:
            if changes[name] is None and name in ("name", "kind", "priority"):
                raise RuleViolation(f"{name} cannot be empty.", extra={"field": name})
            setattr(campaign, name, changes[name])
    if body.site_ids is not None:
        _set_sites(scope, session, campaign, body.site_ids)
    if body.variants is not None:
        _set_variants(session, campaign, body.variants)
    session.flush()
    _check(session, scope, campaign, now, "The campaign breaks a rule")
    audit.record(
        session,
        scope,
        "campaign.update",
        "campaign",
        campaign.id,
        campaign.organisation_id,
        before,
        _snap(session, campaign),
        now,
    )
    return campaign


_MOVES = {
    "activate": ({CampaignStatus.DRAFT, CampaignStatus.PAUSED}, CampaignStatus.ACTIVE),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.ACTIVE),
    "pause": ({CampaignStatus.ACTIVE}, CampaignStatus.PAUSED),
    "end": ({CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED}, CampaignStatus.ENDED),
}


def move(
    session: Session, scope: Principal, campaign_id: int, action: str, if_match: str | None, now: datetime
) -> Campaign:
    """activate / resume / pause / end; If-Match is optional here (pausing must work in a hurry)."""
    campaign = visible_campaign(scope, session, campaign_id)
    scope.require(campaign.organisation_id, Role.EDITOR)
    allowed, target = _MOVES[action]
    if CampaignStatus(campaign.status) not in allowed:
        raise Conflict(f"A {campaign.status} campaign cannot {action}.")
    if if_match is not None and expected_version(if_match) != campaign.version:
        raise PreconditionFailed("Someone changed this campaign since you read it; read it again.")
    before = _snap(session, campaign)
    claim_version(session, campaign, f'"v{campaign.version}"')
    campaign.status = target.value
    session.flush()
    if target == CampaignStatus.ACTIVE:
        _check(session, scope, campaign, now, "The campaign cannot run yet")
    audit.record(
        session,
        scope,
        f"campaign.{action}",
        "campaign",
        campaign.id,
        campaign.organisation_id,
        before,
        _snap(session, campaign),
        now,
    )
    return campaign
