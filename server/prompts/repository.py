"""Queries about prompts a person was given."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignVariant
from server.core.const import Outcome
from server.prompts.models import PromptDecision
from server.sites.models import Site
from server.tenancy.models import Organisation

InboxRow = Row[PromptDecision, CampaignVariant, Campaign, Site, Organisation]


def inbox(session: Session, subscriber_id: uuid.UUID, limit: int) -> Sequence[InboxRow]:
    """The person's prompts, newest first, with what the phone shows."""
    return session.execute(
        select(PromptDecision, CampaignVariant, Campaign, Site, Organisation)
        .join(CampaignVariant, CampaignVariant.id == PromptDecision.variant_id)
        .join(Campaign, Campaign.id == PromptDecision.campaign_id)
        .join(Site, Site.id == PromptDecision.site_id)
        .join(Organisation, Organisation.id == Campaign.organisation_id)
        .where(PromptDecision.subscriber_id == subscriber_id, PromptDecision.outcome == Outcome.PROMPTED)
        .order_by(PromptDecision.decided_at.desc(), PromptDecision.id.desc())
        .limit(limit)
    ).all()
