"""Queries of the outbox: claim due rows safely across workers with what their pushes need, record outcomes.

Plain Core statements on the tables: the sender handles many rows a second and needs no ORM identity map."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from server.campaigns.models import CampaignVariant
from server.core.bulk import update_rows
from server.core.const import DeliveryStatus
from server.core.listparam import in_list
from server.prompts.models import Delivery, PromptDecision
from server.subscribers.models import PushChannel

_deliveries = cast(Table, Delivery.__table__)
_decisions = cast(Table, PromptDecision.__table__)
_channels = cast(Table, PushChannel.__table__)
_variants = cast(Table, CampaignVariant.__table__)

Claimed = tuple[int, int]  # (delivery id, attempts after the claim): the claim's fence


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed delivery and everything its push needs, read in the claim's transaction."""

    claimed: Claimed
    channel_kind: str
    channel_id: int | None
    endpoint: str | None  # None: the channel row is gone
    keys: dict[str, Any] | None
    channel_retired: bool
    decision_id: int
    subscriber_id: uuid.UUID | None
    campaign_id: int | None
    outcome: str
    expires_at: datetime | None
    title: str | None  # None: the variant is gone
    body: str | None
    language: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    """An attempt's outcome to record: the columns to set on the row, if the claim still holds."""

    claimed: Claimed
    values: dict[str, Any]


def pending_summary(session: Session) -> tuple[int, datetime | None]:
    """How many deliveries wait to be sent, and when the oldest of them was created (for the metrics)."""
    query = select(func.count(), func.min(Delivery.created_at)).where(
        Delivery.status == DeliveryStatus.PENDING
    )
    count, oldest = session.execute(query).one()
    return int(count), oldest


def expire_due(session: Session, now: datetime) -> int:
    """Pending pushes of prompts that have expired are not sent any more. Driven from the pending rows
    (few), not from every expired decision in history (many)."""
    expired = exists().where(_decisions.c.id == _deliveries.c.decision_id, _decisions.c.expires_at <= now)
    result = session.execute(
        update(_deliveries)
        .where(_deliveries.c.status == DeliveryStatus.PENDING, expired)
        .values(status=DeliveryStatus.EXPIRED, last_error="the prompt expired before it could be sent")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _claim_statement(postgresql: bool) -> Any:
    due = (
        select(_deliveries.c.id)
        .where(
            _deliveries.c.status == DeliveryStatus.PENDING, _deliveries.c.next_attempt_at <= bindparam("now")
        )
        .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
        .limit(bindparam("limit"))
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_deliveries)
        .where(
            _deliveries.c.id.in_(due.scalar_subquery()),
            # Again outside the subquery: what PostgreSQL rechecks on a row another claim just changed.
            _deliveries.c.status == DeliveryStatus.PENDING,
            _deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .values(attempts=_deliveries.c.attempts + 1, next_attempt_at=bindparam("lease_until"))
        .returning(_deliveries.c.id, _deliveries.c.attempts)
    )


# Built once: the sender claims many times a second, and building a statement costs more than running it.
_CLAIM = {True: _claim_statement(postgresql=True), False: _claim_statement(postgresql=False)}
_d, _p, _c, _v = _deliveries.c, _decisions.c, _channels.c, _variants.c
_CLAIMED = (
    select(
        _d.id,
        _d.channel_kind,
        _d.channel_id,
        _c.endpoint,
        _c["keys"],  # not c.keys: that is the collection's method
        _c.retired_at,
        _p.id,
        _p.subscriber_id,
        _p.campaign_id,
        _p.outcome,
        _p.expires_at,
        _v.title,
        _v.body,
        _v.language,
    )
    .select_from(
        _deliveries.join(_decisions, _p.id == _d.decision_id)
        .outerjoin(_channels, _c.id == _d.channel_id)
        .outerjoin(_variants, _v.id == _p.variant_id)
    )
    .where(in_list(_d.id, "ids"))
    .order_by(_d.id)
)


def claim(session: Session, now: datetime, lease_s: float, limit: int) -> list[Due]:
    """Take up to `limit` due rows for this worker for `lease_s` seconds, in one statement, and read what
    their pushes need. PostgreSQL skips rows another worker holds (FOR UPDATE SKIP LOCKED); SQLite runs one
    writer at a time, so the statement alone is the claim. The attempts it returns fence later records."""
    statement = _CLAIM[session.get_bind().dialect.name == "postgresql"]
    params = {"now": now, "limit": limit, "lease_until": now + timedelta(seconds=lease_s)}
    claimed: dict[int, int] = dict(session.execute(statement, params).all())
    if not claimed:
        return []
    rows = session.execute(_CLAIMED, {"ids": list(claimed)}).all()
    return [
        Due((id_, claimed[id_]), kind, channel_id, endpoint, keys, retired is not None, *rest)
        for id_, kind, channel_id, endpoint, keys, retired, *rest in rows
    ]


def finish(session: Session, done: Sequence[Finish]) -> int:
    """Record attempts' outcomes, one bulk UPDATE per set of columns; a row whose lease ran out and that
    another worker claimed meanwhile (its attempts moved on) is left alone. Returns the rows recorded."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for f in done:
        groups[tuple(sorted(f.values))].append({"id": f.claimed[0], "attempts": f.claimed[1], **f.values})
    recorded = 0
    for rows in groups.values():
        recorded += update_rows(
            session.connection(),
            _deliveries,
            "id",
            rows,
            match=("attempts",),
            where=_deliveries.c.status == DeliveryStatus.PENDING,
        )
    return recorded


def retire_channels(session: Session, channel_ids: Sequence[int], now: datetime) -> None:
    if channel_ids:
        session.execute(
            update(_channels)
            .where(_channels.c.id.in_(sorted(set(channel_ids))), _channels.c.retired_at.is_(None))
            .values(retired_at=now)
        )


def update_channel_keys(session: Session, channel_id: int, keys: dict[str, Any]) -> None:
    channel = session.get(PushChannel, channel_id)
    if channel is not None:
        channel.keys = {**(channel.keys or {}), **keys}
