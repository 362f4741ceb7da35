"""The live decision's two ends: explain (one person, nothing locked, nothing recorded) and recording a
batch's decisions with their deliveries (the outbox pattern: they commit together)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from server.core import direct
from server.core.bulk import insert_rows
from server.core.const import Outcome
from server.core.direct import Query
from server.policy.decide import Decision, Reason
from server.policy.live import Decider, SiteRef
from server.policy.repository import PersonRow
from server.prompts.deliveries import landing_token_hash, queue_prompts, secret_key
from server.prompts.models import PromptDecision
from server.sites.models import Site
from server.subscribers.models import Subscriber

log = logging.getLogger("nahbar.decisions")


def decide_now(
    session: Session, subscriber: Subscriber, site: Site, now: datetime, dwell_s: float
) -> Decision:
    """The decision the policy takes for this person at this site now, from what the database holds."""
    person = PersonRow(subscriber.id, subscriber.scopes, subscriber.language, subscriber.preferences)
    where = SiteRef.of(site)
    return Decider.load(session, [person], [(where, now)]).decide(subscriber.id, where, now, dwell_s)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A recorded decision, as the callers of the live path see it."""

    id: int
    outcome: str
    reason: str
    campaign_id: int | None

    @classmethod
    def of(cls, row: PromptDecision) -> DecisionRecord:
        return cls(row.id, row.outcome, row.reason, row.campaign_id)


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision taken for a sighting, to be recorded."""

    subscriber_id: uuid.UUID
    site_id: int
    site_name: str
    visit_id: int
    event_id: int
    decided_at: datetime
    decision: Decision
    slot: int | None  # the prompt's (person, local day) slot


def record_decisions(
    session: Session,
    decided: list[Decided],
    ttl_s: int,
    *,
    ids: list[int] | None = None,
    channels: dict[uuid.UUID, list[tuple[int, str]]] | None = None,
) -> dict[int, DecisionRecord]:
    """Record the decisions (by event id) and queue the prompts' deliveries, in this transaction. `ids`:
    fresh decision ids drawn already (`new_ids_query`; at least one a decision), `channels`: the people's
    push channels read already (`channels_query`).

    The (subscriber, local_day, day_slot) key is the second guard of the daily cap: a prompt whose slot was
    taken after all (which the person's lock should make impossible) is recorded as suppressed instead."""
    if not decided:
        return {}
    # On PostgreSQL the ids are drawn first, so each prompt's landing token hash goes in with its row
    # instead of an UPDATE of every prompt after the insert.
    if ids is None:
        ids = _new_ids(session, len(decided))
    else:
        assert len(ids) >= len(decided)
        ids = ids[: len(decided)]
    rows = [_row(d, d.decision, d.slot, ttl_s) for d in decided]
    if ids is not None:
        secret = secret_key(session)
        for row, decision_id in zip(rows, ids, strict=True):
            prompted = row["outcome"] == Outcome.PROMPTED
            row["id"] = decision_id
            row["landing_token_hash"] = landing_token_hash(secret, decision_id) if prompted else None
    recorded = _insert(session, rows)
    collided = [(d, row) for d, row in zip(decided, rows, strict=True) if d.event_id not in recorded]
    if collided:
        log.warning("day slot taken despite the person's lock", extra={"count": len(collided)})
        fallback = []
        for d, row in collided:
            instead = _row(d, Decision(Reason.GLOBAL_DAILY_CAP, d.decision.local_day), None, ttl_s)
            if ids is not None:
                instead |= {"id": row["id"], "landing_token_hash": None}
            fallback.append(instead)
        recorded |= _insert(session, fallback)
    prompts = [
        (r.id, d.subscriber_id, d.decided_at)
        for d in decided
        if (r := recorded[d.event_id]).outcome == Outcome.PROMPTED
    ]
    queue_prompts(session, prompts, hashed=ids is not None, channels=channels)
    if not log.isEnabledFor(logging.INFO):
        return recorded
    for d in decided:
        log.info(
            "decision %s",
            recorded[d.event_id].reason,
            extra={
                "site": d.site_name,
                "site_id": d.site_id,
                "campaign_id": d.decision.campaign_id,
                "subscriber": str(d.subscriber_id)[:8],
            },
        )
    return recorded


_NEW_IDS = select(func.nextval(func.pg_get_serial_sequence("prompt_decisions", "id"))).select_from(
    func.generate_series(1, bindparam("n"))
)


def new_ids_query(count: int) -> Query:
    """PostgreSQL: `count` fresh decision ids (the rows' first column), to draw with other queries."""
    return _NEW_IDS, {"n": count}


def _new_ids(session: Session, count: int) -> list[int] | None:
    """`count` fresh decision ids from the table's sequence (PostgreSQL); None on SQLite, which has none."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    return [row[0] for row in direct.rows(connection, _NEW_IDS, {"n": count})]


def _row(d: Decided, decision: Decision, slot: int | None, ttl_s: int) -> dict[str, Any]:
    prompted = decision.prompted
    return {
        "subscriber_id": d.subscriber_id,
        "site_id": d.site_id,
        "visit_id": d.visit_id,
        "event_id": d.event_id,
        "campaign_id": decision.campaign_id,
        "variant_id": decision.variant_id,
        "outcome": Outcome.PROMPTED if prompted else Outcome.SUPPRESSED,
        "reason": decision.reason,
        "decided_at": d.decided_at,
        "local_day": decision.local_day if prompted else None,
        "day_slot": slot if prompted else None,
        "expires_at": d.decided_at + timedelta(seconds=ttl_s) if prompted else None,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> dict[int, DecisionRecord]:
    t = cast(Table, PromptDecision.__table__)
    returned = insert_rows(
        session.connection(),
        t,
        rows,
        returning=[t.c.id, t.c.event_id, t.c.outcome, t.c.reason, t.c.campaign_id],
        conflict=["subscriber_id", "local_day", "day_slot"],
    )
    return {
        event_id: DecisionRecord(decision_id, outcome, reason, campaign_id)
        for decision_id, event_id, outcome, reason, campaign_id in returned
        if event_id is not None
    }
