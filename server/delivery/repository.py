"""Queries of the outbox: claim due rows safely across workers, load what to send, record the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignVariant
from server.core.const import DeliveryStatus
from server.prompts.models import Delivery, PromptDecision
from server.subscribers.models import PushChannel, Subscriber
from server.tenancy.models import Organisation

Claimed = tuple[int, int]  # (delivery id, attempts after the claim): the claim's fence


def expire_due(session: Session, now: datetime) -> int:
    """Pending pushes of prompts that have expired are not sent any more."""
    expired = select(PromptDecision.id).where(PromptDecision.expires_at <= now).scalar_subquery()
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.decision_id.in_(expired))
        .values(status=DeliveryStatus.EXPIRED, last_error="the prompt expired before it could be sent")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim(session: Session, now: datetime, lease_s: float, limit: int) -> list[Claimed]:
    """Take up to `limit` due rows for this worker for `lease_s` seconds. PostgreSQL skips rows another
    worker holds (FOR UPDATE SKIP LOCKED); on SQLite, whose writers are serialised, the conditional UPDATE
    is the claim: only the worker that still sees the row due changes it."""
    query = (
        select(Delivery.id, Delivery.attempts)
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for delivery_id, attempts in session.execute(query).all():
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.attempts == attempts,
            )
            .values(attempts=attempts + 1, next_attempt_at=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            claimed.append((delivery_id, attempts + 1))
    return claimed


SendRow = Row[
    Delivery, PromptDecision, PushChannel | None, CampaignVariant, Campaign, Organisation, Subscriber
]


def load(session: Session, delivery_id: int) -> SendRow | None:
    """A claimed delivery with what the phone will show."""
    return session.execute(
        select(Delivery, PromptDecision, PushChannel, CampaignVariant, Campaign, Organisation, Subscriber)
        .join(PromptDecision, PromptDecision.id == Delivery.decision_id)
        .outerjoin(PushChannel, PushChannel.id == Delivery.channel_id)
        .join(CampaignVariant, CampaignVariant.id == PromptDecision.variant_id)
        .join(Campaign, Campaign.id == PromptDecision.campaign_id)
        .join(Organisation, Organisation.id == Campaign.organisation_id)
        .join(Subscriber, Subscriber.id == PromptDecision.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).first()


def finish(session: Session, claimed: Claimed, **values: Any) -> bool:
    """Record an attempt's outcome, unless the lease ran out and another worker took the row meanwhile."""
    delivery_id, attempts = claimed
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.attempts == attempts,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def retire_channel(session: Session, channel_id: int, now: datetime) -> None:
    session.execute(
        update(PushChannel)
        .where(PushChannel.id == channel_id, PushChannel.retired_at.is_(None))
        .values(retired_at=now)
        .execution_options(synchronize_session=False)
    )


def update_channel_keys(session: Session, channel_id: int, keys: dict[str, Any]) -> None:
    channel = session.get(PushChannel, channel_id)
    if channel is not None:
        channel.keys = {**(channel.keys or {}), **keys}


def pending(session: Session, decision_id: int) -> Sequence[Delivery]:
    return session.scalars(
        select(Delivery).where(Delivery.decision_id == decision_id).order_by(Delivery.id)
    ).all()
