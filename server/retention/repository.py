"""Queries of the retention job: counts for the daily roll-up, the roll-up's upsert, and batched deletes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.impact.models import PromptReference
from server.presence.models import DailyAggregate, ProximityEvent, Visit
from server.prompts.models import Delivery, PromptDecision, PromptResponse
from server.sites.models import Site
from server.tenancy.models import PlatformSettings


def platform_retention_days(session: Session) -> int | None:
    """The operator's retention period in the database, if the platform settings row exists."""
    return session.scalar(select(PlatformSettings.retention_days).limit(1))


def site_zones(session: Session) -> Sequence[tuple[int, str | None]]:
    """Every site with its IANA time zone (NULL when unset)."""
    return [(row[0], row[1]) for row in session.execute(select(Site.id, Site.timezone).order_by(Site.id))]


def oldest_raw(session: Session) -> datetime | None:
    """The earliest moment any raw row (proximity event or visit) still describes."""
    first_event = session.scalar(select(func.min(ProximityEvent.observed_at)))
    first_visit = session.scalar(select(func.min(Visit.started_at)))
    known = [moment for moment in (first_event, first_visit) if moment is not None]
    return min(known) if known else None


def last_aggregated_day(session: Session, site_ids: Collection[int]) -> date | None:
    return session.scalar(select(func.max(DailyAggregate.day)).where(DailyAggregate.site_id.in_(site_ids)))


def aggregated_days(session: Session, site_ids: Collection[int], since: date) -> set[tuple[int, date]]:
    rows = session.execute(
        select(DailyAggregate.site_id, DailyAggregate.day).where(
            DailyAggregate.site_id.in_(site_ids), DailyAggregate.day >= since
        )
    )
    return {(row[0], row[1]) for row in rows}


def count_events(
    session: Session, site_ids: Collection[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Proximity events (both sources) per site observed in [start, end)."""
    rows = session.execute(
        select(ProximityEvent.site_id, func.count())
        .where(
            ProximityEvent.site_id.in_(site_ids),
            ProximityEvent.observed_at >= start,
            ProximityEvent.observed_at < end,
        )
        .group_by(ProximityEvent.site_id)
    )
    return {row[0]: row[1] for row in rows}


def count_visits(
    session: Session, site_ids: Collection[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Visits per site that began in [start, end)."""
    rows = session.execute(
        select(Visit.site_id, func.count())
        .where(Visit.site_id.in_(site_ids), Visit.started_at >= start, Visit.started_at < end)
        .group_by(Visit.site_id)
    )
    return {row[0]: row[1] for row in rows}


def count_decisions(
    session: Session, site_ids: Collection[int], start: datetime, end: datetime
) -> dict[tuple[int, str], int]:
    """Decisions per (site, outcome) made in [start, end)."""
    rows = session.execute(
        select(PromptDecision.site_id, PromptDecision.outcome, func.count())
        .where(
            PromptDecision.site_id.in_(site_ids),
            PromptDecision.decided_at >= start,
            PromptDecision.decided_at < end,
        )
        .group_by(PromptDecision.site_id, PromptDecision.outcome)
    )
    return {(row[0], row[1]): row[2] for row in rows}


def upsert_aggregates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write (site, day) counts, replacing what is there: concurrent runs write the same numbers."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(DailyAggregate).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["site_id", "day"],
            set_={
                "events": stmt.excluded.events,
                "visits": stmt.excluded.visits,
                "prompts": stmt.excluded.prompts,
                "suppressed": stmt.excluded.suppressed,
            },
        )
    )


def delete_events_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` proximity events (gateway and phone) observed before `cutoff`.

    Rows another worker is deleting are skipped on PostgreSQL, so concurrent purges neither wait nor deadlock.
    Prompt decisions keep their row; their link to the event is cut here (it has no foreign key).
    """
    ids = session.scalars(
        select(ProximityEvent.id)
        .where(ProximityEvent.observed_at < cutoff)
        .order_by(ProximityEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return 0  # no write at all when there is nothing to do: SQLite has one writer at a time
    session.execute(update(PromptDecision).where(PromptDecision.event_id.in_(ids)).values(event_id=None))
    result = session.execute(delete(ProximityEvent).where(ProximityEvent.id.in_(ids)))
    assert isinstance(result, CursorResult)
    return result.rowcount


def delete_visits_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` visits last seen before `cutoff`; decisions and events that are kept are unlinked
    from them here (the links have no foreign key)."""
    ids = session.scalars(
        select(Visit.id)
        .where(Visit.last_seen_at < cutoff)
        .order_by(Visit.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return 0
    session.execute(update(PromptDecision).where(PromptDecision.visit_id.in_(ids)).values(visit_id=None))
    session.execute(update(ProximityEvent).where(ProximityEvent.visit_id.in_(ids)).values(visit_id=None))
    result = session.execute(delete(Visit).where(Visit.id.in_(ids)))
    assert isinstance(result, CursorResult)
    return result.rowcount


def delete_decisions_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` decisions taken before `cutoff`, with their deliveries and the person's responses
    (children first, as erasure does). What the caps need of them is in the people's histories since they
    were recorded (server/policy/history.py), and their counts are in the daily aggregates."""
    ids = session.scalars(
        select(PromptDecision.id)
        .where(PromptDecision.decided_at < cutoff)
        .order_by(PromptDecision.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return 0
    session.execute(delete(PromptResponse).where(PromptResponse.decision_id.in_(ids)))
    session.execute(delete(PromptReference).where(PromptReference.decision_id.in_(ids)))
    session.execute(delete(Delivery).where(Delivery.decision_id.in_(ids)))
    result = session.execute(delete(PromptDecision).where(PromptDecision.id.in_(ids)))
    assert isinstance(result, CursorResult)
    return result.rowcount
