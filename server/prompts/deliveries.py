"""Which deliveries a prompt gets. Written in the decision's transaction (the outbox pattern), so a prompt and
its deliveries commit together or not at all; the sender is woken once the transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from server.core.config import get_settings
from server.core.const import ChannelKind, DeliveryStatus
from server.core.security import hash_token
from server.prompts.models import Delivery, PromptDecision
from server.prompts.tokens import SECRET_INFO, WAKE_INFO, landing_token
from server.subscribers.models import PushChannel


def secret_key(session: Session) -> str:
    """The running app's secret (handed over in Session.info), else this process's settings."""
    secret = session.info.get(SECRET_INFO)
    return str(secret) if secret else get_settings().secret_key.get_secret_value()


def create_deliveries(session: Session, decision: PromptDecision, *, inbox: bool = True) -> list[Delivery]:
    """Queue the prompt for the person: the inbox the app pulls (always available), and one push per active
    channel. Each (decision, channel) row is unique, so a repeat adds nothing."""
    decision.landing_token_hash = hash_token(landing_token(secret_key(session), decision.id))
    deliveries = []
    if inbox:
        deliveries.append(
            Delivery(decision_id=decision.id, channel_kind=ChannelKind.INBOX, status=DeliveryStatus.AVAILABLE)
        )
    channels = session.scalars(
        select(PushChannel)
        .where(PushChannel.subscriber_id == decision.subscriber_id, PushChannel.retired_at.is_(None))
        .order_by(PushChannel.id)
    ).all()
    deliveries += [
        Delivery(
            decision_id=decision.id,
            channel_kind=channel.kind,
            channel_id=channel.id,
            status=DeliveryStatus.PENDING,
            next_attempt_at=decision.decided_at,
        )
        for channel in channels
    ]
    session.add_all(deliveries)
    if channels:
        _wake_after_commit(session)
    return deliveries


def _wake_after_commit(session: Session) -> None:
    # A wake-up that follows a rolled-back transaction is harmless: the sender finds nothing due.
    wake = cast(Callable[[], None] | None, session.info.get(WAKE_INFO))
    if wake is None or session.info.get(_REGISTERED):
        return
    session.info[_REGISTERED] = True

    def after_commit(_session: Session) -> None:
        session.info.pop(_REGISTERED, None)
        wake()

    event.listen(session, "after_commit", after_commit, once=True)


_REGISTERED = "nahbar.outbox_wake_registered"
