"""Folding the impact ledger into daily counts, every half minute (and before a read that wants it now).

A decision is recorded on every event of a visit until the visit is settled (prompted, or suppressed for a
reason that holds): a visit too short so far is decided again at its next event. The funnel counts each
visit once, under its last word: the fold counts a visit's first unsettled reason (dwell_too_short) and
remembers it (ImpactVisitMark); when the same visit is settled later, that count moves to the settling
outcome. Folds run one at a time (a locked row), so the marks are read and written by one fold at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign
from server.impact import tally
from server.impact.models import ImpactDaily, ImpactFoldState, ImpactTally, ImpactVisitMark
from server.policy.decide import NOT_YET, Reason
from server.webhooks import service as webhooks

log = logging.getLogger("nahbar.impact")

FOLD_BATCH: Final = 10_000  # ledger rows per fold transaction
# A visit unsettled for longer than this has ended long since (visits end after the visit gap): its mark goes.
MARK_KEEP: Final = timedelta(days=2)
_SETTLED: Final = "*settled"  # a mark's detail once its visit is settled: later unsettled rows add nothing
_NOT_YET: Final = frozenset(str(reason) for reason in NOT_YET)

Key = tuple[int, date, int, int, str, str]  # site, day, campaign, variant, metric, detail


@dataclass(slots=True)
class _Mark:
    site_id: int
    day: date
    campaign_id: int
    variant_id: int
    detail: str
    marked_at: datetime
    changed: bool = False


def _lock(session: Session, now: datetime) -> bool:
    """Take the fold's row for this transaction; False when another worker's fold holds it."""
    if session.get_bind().dialect.name == "postgresql":
        held = session.scalar(
            select(ImpactFoldState.id).where(ImpactFoldState.id == 1).with_for_update(skip_locked=True)
        )
        if held is None:
            exists = session.scalar(select(func.count()).select_from(ImpactFoldState))
            if exists:
                return False
            session.add(ImpactFoldState(id=1, folded_at=None))
            session.flush()
        return True
    # SQLite: the first write takes the database's one write lock, for the rest of the transaction.
    result = session.execute(update(ImpactFoldState).where(ImpactFoldState.id == 1).values(folded_at=now))
    if not getattr(result, "rowcount", 0):
        session.add(ImpactFoldState(id=1, folded_at=now))
        session.flush()
    return True


def fold(session: Session, now: datetime, limit: int = FOLD_BATCH) -> int:
    """Fold up to `limit` ledger rows into ImpactDaily in this transaction; returns how many it folded."""
    if not _lock(session, now):
        return 0
    rows = session.execute(
        select(
            ImpactTally.id,
            ImpactTally.site_id,
            ImpactTally.day,
            ImpactTally.campaign_id,
            ImpactTally.variant_id,
            ImpactTally.metric,
            ImpactTally.detail,
            ImpactTally.n,
            ImpactTally.visit_ref,
        )
        .order_by(ImpactTally.id)
        .limit(limit)
    ).all()
    refs = {row.visit_ref for row in rows if row.metric == tally.OUTCOME and row.visit_ref is not None}
    marks = _marks(session, refs)
    deltas: dict[Key, int] = defaultdict(int)
    for row in rows:
        key: Key = (row.site_id, row.day, row.campaign_id, row.variant_id, row.metric, row.detail)
        if row.metric != tally.OUTCOME or row.visit_ref is None:
            deltas[key] += row.n
            continue
        mark = marks.get(row.visit_ref)
        if row.detail in _NOT_YET:
            if mark is None:
                marks[row.visit_ref] = _Mark(*key[:4], row.detail, now, changed=True)
                deltas[key] += row.n
            continue
        if mark is not None and mark.detail != _SETTLED:
            deltas[
                (mark.site_id, mark.day, mark.campaign_id, mark.variant_id, tally.OUTCOME, mark.detail)
            ] -= 1
        deltas[key] += row.n
        marks[row.visit_ref] = _Mark(*key[:4], _SETTLED, now, changed=True)
    _add(session, deltas)
    _write_marks(session, marks)
    if rows:
        session.execute(delete(ImpactTally).where(ImpactTally.id.in_([row.id for row in rows])))
    session.execute(delete(ImpactVisitMark).where(ImpactVisitMark.marked_at < now - MARK_KEEP))
    session.execute(update(ImpactFoldState).where(ImpactFoldState.id == 1).values(folded_at=now))
    _budgets_spent(session, deltas, now)
    return len(rows)


def _marks(session: Session, refs: set[int]) -> dict[int, _Mark]:
    if not refs:
        return {}
    found = session.execute(
        select(
            ImpactVisitMark.visit_ref,
            ImpactVisitMark.site_id,
            ImpactVisitMark.day,
            ImpactVisitMark.campaign_id,
            ImpactVisitMark.variant_id,
            ImpactVisitMark.detail,
            ImpactVisitMark.marked_at,
        ).where(ImpactVisitMark.visit_ref.in_(sorted(refs)))
    )
    return {row[0]: _Mark(*row[1:]) for row in found}


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


_daily = cast(Table, ImpactDaily.__table__)
_KEY_COLUMNS: Final = ["site_id", "day", "campaign_id", "variant_id", "metric", "detail"]


def _add(session: Session, deltas: dict[Key, int]) -> None:
    rows = [dict(zip(_KEY_COLUMNS, key, strict=True)) | {"n": n} for key, n in deltas.items() if n]
    if not rows:
        return
    stmt = _insert(session)(_daily).values(rows)
    session.execute(
        stmt.on_conflict_do_update(index_elements=_KEY_COLUMNS, set_={"n": _daily.c.n + stmt.excluded.n})
    )


def _write_marks(session: Session, marks: dict[int, _Mark]) -> None:
    rows = [
        {
            "visit_ref": ref,
            "site_id": m.site_id,
            "day": m.day,
            "campaign_id": m.campaign_id,
            "variant_id": m.variant_id,
            "detail": m.detail,
            "marked_at": m.marked_at,
        }
        for ref, m in marks.items()
        if m.changed
    ]
    if not rows:
        return
    stmt = _insert(session)(ImpactVisitMark).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["visit_ref"],
            set_={"detail": stmt.excluded.detail, "marked_at": stmt.excluded.marked_at},
        )
    )


def _budgets_spent(session: Session, deltas: dict[Key, int], now: datetime) -> None:
    """Tell the charity's webhooks once a day when a campaign's daily budget is spent."""
    touched = {
        (campaign_id, day)
        for (_, day, campaign_id, _, metric, detail), n in deltas.items()
        if metric == tally.OUTCOME and detail == Reason.PROMPTED and campaign_id and n > 0
    }
    if not touched:
        return
    budgets = {
        row[0]: (row[1], row[2], row[3])
        for row in session.execute(
            select(Campaign.id, Campaign.organisation_id, Campaign.daily_budget, Campaign.name).where(
                Campaign.id.in_(sorted({c for c, _ in touched})), Campaign.daily_budget.is_not(None)
            )
        )
    }
    for campaign_id, day in sorted(touched):
        if campaign_id not in budgets:
            continue
        organisation_id, budget, name = budgets[campaign_id]
        given = session.scalar(
            select(func.coalesce(func.sum(ImpactDaily.n), 0)).where(
                ImpactDaily.campaign_id == campaign_id,
                ImpactDaily.day == day,
                ImpactDaily.metric == tally.OUTCOME,
                ImpactDaily.detail == Reason.PROMPTED,
            )
        )
        if given is not None and budget is not None and given >= budget:
            webhooks.enqueue(
                session,
                organisation_id,
                "campaign.budget_exhausted",
                {"campaign_id": campaign_id, "campaign_name": name, "day": day.isoformat(), "budget": budget},
                dedupe_key=f"{campaign_id}:{day.isoformat()}",
                at=now,
            )
