"""Campaign queries, each filtered through the caller's Principal."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core.paging import PageParams, paginate
from server.sites.models import Site
from server.tenancy.scope import Principal

CAMPAIGN_SORT = {
    "id": Campaign.id,
    "name": Campaign.name,
    "priority": Campaign.priority,
    "created_at": Campaign.created_at,
    "starts_at": Campaign.starts_at,
}


def campaigns(
    scope: Principal,
    session: Session,
    params: PageParams,
    *,
    organisation_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    site_id: int | None = None,
    q: str | None = None,
) -> tuple[list[Campaign], int]:
    query = select(Campaign).where(scope.visible(Campaign.organisation_id))
    if organisation_id is not None:
        query = query.where(Campaign.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Campaign.status == status)
    if kind is not None:
        query = query.where(Campaign.kind == kind)
    if site_id is not None:
        query = query.where(
            Campaign.id.in_(select(CampaignSite.campaign_id).where(CampaignSite.site_id == site_id))
        )
    if q:
        query = query.where(Campaign.name.ilike(f"%{q}%"))
    return paginate(session, query, params, CAMPAIGN_SORT, Campaign.id.asc())


def campaign(scope: Principal, session: Session, campaign_id: int) -> Campaign | None:
    return session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, scope.visible(Campaign.organisation_id))
    )


def site_ids(session: Session, campaign_id: int) -> list[int]:
    rows = session.scalars(
        select(CampaignSite.site_id)
        .where(CampaignSite.campaign_id == campaign_id)
        .order_by(CampaignSite.site_id)
    )
    return list(rows)


def variants(session: Session, campaign_id: int) -> Sequence[CampaignVariant]:
    return session.scalars(
        select(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id).order_by(CampaignVariant.id)
    ).all()


def org_sites(scope: Principal, session: Session, organisation_id: int, ids: list[int]) -> Sequence[Site]:
    """The sites among `ids` that belong to this organisation (and that the caller sees)."""
    if not ids:
        return []
    return session.scalars(
        select(Site)
        .where(Site.id.in_(ids), Site.organisation_id == organisation_id, scope.visible(Site.organisation_id))
        .order_by(Site.id)
    ).all()


def replace_sites(session: Session, campaign_id: int, ids: list[int]) -> None:
    session.execute(delete(CampaignSite).where(CampaignSite.campaign_id == campaign_id))
    session.add_all(CampaignSite(campaign_id=campaign_id, site_id=i) for i in sorted(set(ids)))


def replace_variants(session: Session, campaign_id: int, rows: list[CampaignVariant]) -> None:
    session.execute(delete(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id))
    session.flush()
    session.add_all(rows)
