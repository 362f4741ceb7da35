"""Loads what the decision needs and records what it decided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.policy.decide import CampaignOption, VariantOption
from server.prompts.models import PromptDecision
from server.subscribers.models import Exclusion
from server.tenancy.models import PlatformSettings


@dataclass(frozen=True, slots=True)
class Excluded:
    sites: frozenset[int]
    organisations: frozenset[int]


def campaigns_at_site(session: Session, site_id: int) -> list[CampaignOption]:
    rows = session.scalars(
        select(Campaign)
        .join(CampaignSite, CampaignSite.campaign_id == Campaign.id)
        .where(CampaignSite.site_id == site_id, Campaign.status == "active")
    ).all()
    if not rows:
        return []
    variants: dict[int, list[VariantOption]] = {c.id: [] for c in rows}
    for v in session.scalars(select(CampaignVariant).where(CampaignVariant.campaign_id.in_(variants))):
        variants[v.campaign_id].append(VariantOption(v.id, v.language, v.label))
    return [
        CampaignOption(
            id=c.id,
            organisation_id=c.organisation_id,
            kind=c.kind,
            priority=c.priority,
            status=c.status,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            daily_from=c.daily_from,
            daily_until=c.daily_until,
            variants=tuple(variants[c.id]),
        )
        for c in rows
    ]


def prompts_on_day(session: Session, subscriber_id: uuid.UUID, day: date) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PromptDecision)
            .where(
                PromptDecision.subscriber_id == subscriber_id,
                PromptDecision.local_day == day,
                PromptDecision.day_slot.is_not(None),
            )
        )
        or 0
    )


def platform_settings(session: Session) -> PlatformSettings:
    settings = session.scalar(select(PlatformSettings).limit(1))
    return settings if settings is not None else PlatformSettings(max_prompts_per_day=1)


def exclusions(session: Session, subscriber_id: uuid.UUID) -> Excluded:
    """The sites ("not here") and charities ("not this charity") the person excluded."""
    rows = session.execute(
        select(Exclusion.site_id, Exclusion.organisation_id).where(Exclusion.subscriber_id == subscriber_id)
    ).all()
    return Excluded(
        sites=frozenset(site for site, _ in rows if site is not None),
        organisations=frozenset(org for _, org in rows if org is not None),
    )
