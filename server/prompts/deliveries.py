"""Which deliveries a prompt gets. Written in the decision's transaction (the outbox pattern), so a prompt and
its deliveries commit together or not at all."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.core.const import ChannelKind, DeliveryStatus
from server.prompts.models import Delivery, PromptDecision


def create_deliveries(session: Session, decision: PromptDecision) -> list[Delivery]:
    """Queue the prompt for the person: today the inbox the app pulls (always available)."""
    deliveries = [
        Delivery(decision_id=decision.id, channel_kind=ChannelKind.INBOX, status=DeliveryStatus.AVAILABLE)
    ]
    session.add_all(deliveries)
    return deliveries
