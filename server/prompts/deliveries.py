"""Which deliveries a prompt gets. Written in the decision's transaction (the outbox pattern), so a prompt and
its deliveries commit together or not at all; the sender is woken once the transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from server.core import direct
from server.core.bulk import insert_query, insert_rows, update_rows
from server.core.config import get_settings
from server.core.const import ChannelKind, DeliveryStatus
from server.core.direct import Query
from server.core.listparam import in_list
from server.core.security import hash_token
from server.prompts.models import Delivery, PromptDecision
from server.prompts.tokens import SECRET_INFO, WAKE_INFO, landing_token
from server.subscribers.models import PushChannel


def secret_key(session: Session) -> str:
    """The running app's secret (handed over in Session.info), else this process's settings."""
    secret = session.info.get(SECRET_INFO)
    return str(secret) if secret else get_settings().secret_key.get_secret_value()


def create_deliveries(session: Session, decision: PromptDecision) -> list[Delivery]:
    """Queue one prompt (a test send) the way the live path queues a batch's, and return its rows."""
    session.flush()
    assert decision.subscriber_id is not None  # only erasure clears it, and then nothing is sent
    queue_prompts(session, [(decision.id, decision.subscriber_id, decision.decided_at)])
    session.expire(decision, ["landing_token_hash"])  # written by queue_prompts' UPDATE
    return list(
        session.scalars(select(Delivery).where(Delivery.decision_id == decision.id).order_by(Delivery.id))
    )


_CHANNELS = (
    select(PushChannel.id, PushChannel.subscriber_id, PushChannel.kind)
    .where(in_list(PushChannel.subscriber_id, "people"), PushChannel.retired_at.is_(None))
    .order_by(PushChannel.id)
)


def landing_token_hash(secret: str, decision_id: int) -> str:
    return hash_token(landing_token(secret, decision_id))


def channels_query(people: Iterable[uuid.UUID]) -> Query:
    """The active push channels of these people (rows for `channels_of`)."""
    return _CHANNELS, {"people": sorted(set(people))}


def channels_of(rows: Iterable[Any]) -> dict[uuid.UUID, list[tuple[int, str]]]:
    channels: dict[uuid.UUID, list[tuple[int, str]]] = {}
    for channel_id, subscriber_id, kind in rows:
        channels.setdefault(subscriber_id, []).append((channel_id, kind))
    return channels


def queue_prompts(session: Session, prompts: Sequence[tuple[int, uuid.UUID, datetime]]) -> None:
    """Queue prompts (decision id, person, decided at) for their people: their landing token's hash, the
    inbox the app pulls (always available) and one push per active channel, in a few statements."""
    if not prompts:
        return
    secret = secret_key(session)
    update_rows(
        session.connection(),
        _decisions,
        "id",
        [
            {"id": decision_id, "landing_token_hash": landing_token_hash(secret, decision_id)}
            for decision_id, *_ in prompts
        ],
    )
    people = {subscriber_id for _, subscriber_id, _ in prompts}
    channels = channels_of(direct.rows(session.connection(), *channels_query(people)))
    rows = _delivery_rows(prompts, channels)
    insert_rows(session.connection(), _deliveries, rows)
    if any(row["channel_id"] is not None for row in rows):
        _wake_after_commit(session)


def queue_prompts_query(
    session: Session,
    prompts: Sequence[tuple[int, uuid.UUID, datetime]],
    channels: dict[uuid.UUID, list[tuple[int, str]]],
) -> Query:
    """PostgreSQL: the deliveries of prompts whose decisions carry their landing token's hash already, as one
    query to run in the round trip that stores the decisions, after them; `channels` read already
    (`channels_query`). Only the deliveries of decisions stored by then go in: a decision the pipeline
    skipped gets none."""
    rows = _delivery_rows(prompts, channels)
    if any(row["channel_id"] is not None for row in rows):
        _wake_after_commit(session)  # a wake-up with nothing to send is harmless
    return insert_query(_deliveries, rows, existing=("decision_id", _decisions.c.id))


def _delivery_rows(
    prompts: Sequence[tuple[int, uuid.UUID, datetime]], channels: dict[uuid.UUID, list[tuple[int, str]]]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for decision_id, subscriber_id, decided_at in prompts:
        rows.append(_delivery(decision_id, ChannelKind.INBOX, None, DeliveryStatus.AVAILABLE, None))
        rows += [
            _delivery(decision_id, kind, channel_id, DeliveryStatus.PENDING, decided_at)
            for channel_id, kind in channels.get(subscriber_id, ())
        ]
    return rows


_deliveries = cast(Table, Delivery.__table__)
_decisions = cast(Table, PromptDecision.__table__)


def _delivery(
    decision_id: int, kind: str, channel_id: int | None, status: str, due: datetime | None
) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "channel_kind": kind,
        "channel_id": channel_id,
        "status": status,
        "next_attempt_at": due,
        "attempts": 0,
        "created_at": datetime.now(UTC),
    }


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
