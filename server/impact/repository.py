"""Queries of the impact counts, always through the site's organisation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignVariant
from server.impact.models import ImpactDaily, ImpactFoldState
from server.presence.models import DailyAggregate
from server.sites.models import Site


def counts(
    session: Session,
    organisation_id: int,
    since: date,
    until: date,
    *,
    site_id: int | None = None,
    campaign_id: int | None = None,
    variant_id: int | None = None,
    metrics: Collection[str] | None = None,
    site_ids: Collection[int] | None = None,
) -> Sequence[Any]:
    """Rows (day, site, campaign, variant, metric, detail, n) of the organisation's sites."""
    query = (
        select(
            ImpactDaily.day,
            ImpactDaily.site_id,
            ImpactDaily.campaign_id,
            ImpactDaily.variant_id,
            ImpactDaily.metric,
            ImpactDaily.detail,
            func.sum(ImpactDaily.n),
        )
        .join(Site, Site.id == ImpactDaily.site_id)
        .where(Site.organisation_id == organisation_id, ImpactDaily.day >= since, ImpactDaily.day <= until)
        .group_by(
            ImpactDaily.day,
            ImpactDaily.site_id,
            ImpactDaily.campaign_id,
            ImpactDaily.variant_id,
            ImpactDaily.metric,
            ImpactDaily.detail,
        )
    )
    for column, value in (
        (ImpactDaily.site_id, site_id),
        (ImpactDaily.campaign_id, campaign_id),
        (ImpactDaily.variant_id, variant_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if metrics is not None:
        query = query.where(ImpactDaily.metric.in_(sorted(metrics)))
    if site_ids is not None:
        query = query.where(ImpactDaily.site_id.in_(sorted(site_ids)))
    return session.execute(query).all()


def counted_until(session: Session) -> datetime | None:
    return session.scalar(select(ImpactFoldState.folded_at).where(ImpactFoldState.id == 1))


def site_of(session: Session, site_id: int) -> Site | None:
    return session.get(Site, site_id)


def sites(session: Session, organisation_id: int) -> list[Site]:
    return list(
        session.scalars(select(Site).where(Site.organisation_id == organisation_id).order_by(Site.id))
    )


def campaign_of(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def variant_of(session: Session, variant_id: int) -> tuple[CampaignVariant, int] | None:
    row = session.execute(
        select(CampaignVariant, Campaign.organisation_id)
        .join(Campaign, Campaign.id == CampaignVariant.campaign_id)
        .where(CampaignVariant.id == variant_id)
    ).first()
    return None if row is None else (row[0], row[1])


def campaigns_with_variants(
    session: Session, organisation_id: int, campaign_id: int | None
) -> list[tuple[Campaign, list[CampaignVariant]]]:
    query = select(Campaign).where(Campaign.organisation_id == organisation_id).order_by(Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    campaigns = list(session.scalars(query))
    variants: dict[int, list[CampaignVariant]] = {c.id: [] for c in campaigns}
    if campaigns:
        for variant in session.scalars(
            select(CampaignVariant)
            .where(CampaignVariant.campaign_id.in_(sorted(variants)))
            .order_by(CampaignVariant.language, CampaignVariant.label, CampaignVariant.id)
        ):
            variants[variant.campaign_id].append(variant)
    return [(c, variants[c.id]) for c in campaigns]


def daily_aggregates(
    session: Session, organisation_id: int, since: date, until: date, site_id: int | None
) -> Sequence[DailyAggregate]:
    query = (
        select(DailyAggregate)
        .join(Site, Site.id == DailyAggregate.site_id)
        .where(
            Site.organisation_id == organisation_id, DailyAggregate.day >= since, DailyAggregate.day <= until
        )
        .order_by(DailyAggregate.day, DailyAggregate.site_id)
    )
    if site_id is not None:
        query = query.where(DailyAggregate.site_id == site_id)
    return session.scalars(query).all()
