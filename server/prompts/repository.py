"""Queries about prompts a person was given."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignVariant
from server.core.const import Outcome
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.sites.models import Site
from server.subscribers.models import Subscriber
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
        .where(
            PromptDecision.subscriber_id == subscriber_id,
            PromptDecision.outcome.in_([Outcome.PROMPTED, Outcome.TEST]),
        )
        .order_by(PromptDecision.decided_at.desc(), PromptDecision.id.desc())
        .limit(limit)
    ).all()


def own_prompt(
    session: Session, subscriber_id: uuid.UUID, decision_id: int
) -> Row[PromptDecision, int] | None:
    """One of the person's prompts with the charity it came from, or None if it is not theirs."""
    return session.execute(
        select(PromptDecision, func.coalesce(Campaign.organisation_id, Site.organisation_id))
        .join(Site, Site.id == PromptDecision.site_id)
        .outerjoin(Campaign, Campaign.id == PromptDecision.campaign_id)
        .where(
            PromptDecision.id == decision_id,
            PromptDecision.subscriber_id == subscriber_id,
            PromptDecision.outcome == Outcome.PROMPTED,
        )
    ).first()


def find_response(session: Session, decision_id: int, kind: str) -> PromptResponse | None:
    return session.scalar(
        select(PromptResponse)
        .where(PromptResponse.decision_id == decision_id, PromptResponse.kind == kind)
        .order_by(PromptResponse.id)
        .limit(1)
    )


def decisions(session: Session, subscriber_id: uuid.UUID) -> Sequence[PromptDecision]:
    """Every decision about the person, prompted or not, oldest first."""
    return session.scalars(
        select(PromptDecision)
        .where(PromptDecision.subscriber_id == subscriber_id)
        .order_by(PromptDecision.decided_at, PromptDecision.id)
    ).all()


def deliveries(session: Session, subscriber_id: uuid.UUID) -> Sequence[Delivery]:
    return session.scalars(
        select(Delivery)
        .join(PromptDecision, PromptDecision.id == Delivery.decision_id)
        .where(PromptDecision.subscriber_id == subscriber_id)
        .order_by(Delivery.id)
    ).all()


def responses(session: Session, subscriber_id: uuid.UUID) -> Sequence[PromptResponse]:
    return session.scalars(
        select(PromptResponse)
        .join(PromptDecision, PromptDecision.id == PromptResponse.decision_id)
        .where(PromptDecision.subscriber_id == subscriber_id)
        .order_by(PromptResponse.at, PromptResponse.id)
    ).all()


LandingRow = Row[PromptDecision, CampaignVariant, Campaign, Organisation, Subscriber]


def by_landing_token_hash(session: Session, token_hash: str) -> LandingRow | None:
    """The prompt (or test send) a landing page link stands for, with what the page shows."""
    return session.execute(
        select(PromptDecision, CampaignVariant, Campaign, Organisation, Subscriber)
        .join(CampaignVariant, CampaignVariant.id == PromptDecision.variant_id)
        .join(Campaign, Campaign.id == PromptDecision.campaign_id)
        .join(Organisation, Organisation.id == Campaign.organisation_id)
        .join(Subscriber, Subscriber.id == PromptDecision.subscriber_id)
        .where(
            PromptDecision.landing_token_hash == token_hash,
            PromptDecision.outcome.in_([Outcome.PROMPTED, Outcome.TEST]),
        )
    ).first()
