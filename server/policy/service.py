"""The live decision's two ends: explain (one person, nothing locked, nothing recorded) and recording a
batch's decisions with their deliveries (the outbox pattern: they commit together)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from server.core.bulk import insert_query, insert_rows
from server.core.const import Outcome, ResponseKind
from server.core.direct import Query
from server.policy import history, repository
from server.policy.decide import Decision, Reason
from server.policy.live import Decider, Prompt, SiteRef
from server.policy.repository import PersonRow
from server.presence.models import ProximityEvent
from server.prompts.deliveries import landing_token_hash, queue_prompts, queue_prompts_query, secret_key
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
    session: Session, decided: list[Decided], ttl_s: int, decider: Decider
) -> dict[int, DecisionRecord]:
    """Record the decisions (by event id), queue the prompts' deliveries and add the prompts to their people's
    histories (`decider`'s, which took the decisions), in this transaction, one statement after the other
    (SQLite's way; `DecisionWrites` is PostgreSQL's, in one round trip). The prompts' landing token hashes
    are written once their ids are known (`queue_prompts`).

    The (subscriber, local_day, day_slot) key is the second guard of the daily cap: a prompt whose slot was
    taken after all (which the person's lock should make impossible) is recorded as suppressed instead."""
    if not decided:
        return {}
    rows = [_row(d, d.decision, d.slot, ttl_s) for d in decided]
    recorded = _insert(session, rows)
    recorded |= _suppress_collided(session, decided, rows, recorded, ttl_s)
    queue_prompts(session, _prompts(decided, recorded))
    repository.write_histories(session, decider.history_rows(_kept(decided, recorded)))
    _log(decided, recorded)
    return recorded


class DecisionWrites:
    """PostgreSQL: a batch's decisions and their prompts' deliveries as two queries (`queries`), to run in the
    round trip that stores the batch's visits and events, after them; `recorded` reads their answers.

    The decisions' ids, their events' ids and the people's push channels are known before (drawn and read
    with the batch's reads), so nothing waits for an earlier answer. An event that was not stored after all
    (another transaction stored its key meanwhile) gets no decision: the decisions' insert takes only rows
    whose event exists, and the deliveries' only those whose decision does."""

    def __init__(
        self,
        session: Session,
        decided: list[Decided],
        ttl_s: int,
        ids: list[int],
        channels: dict[uuid.UUID, list[tuple[int, str]]],
        decider: Decider | None,  # that took the decisions (None: there are none)
    ) -> None:
        assert len(ids) >= len(decided)
        self._decided = decided
        self._ttl_s = ttl_s
        self._decider = decider
        self._planned: list[Prompt] = []
        self._rows = [_row(d, d.decision, d.slot, ttl_s) for d in decided]
        # Each prompt's landing token hash goes in with its row: its id is known before the insert.
        secret = secret_key(session)
        for row, decision_id in zip(self._rows, ids, strict=False):
            row["id"] = decision_id
            prompted = row["outcome"] == Outcome.PROMPTED
            row["landing_token_hash"] = landing_token_hash(secret, decision_id) if prompted else None
        self.queries: list[Query] = []
        if not decided:
            return
        self.queries.append(_insert_query(self._rows))
        prompts = [
            (row["id"], d.subscriber_id, d.decided_at)
            for d, row in zip(decided, self._rows, strict=True)
            if row["outcome"] == Outcome.PROMPTED
        ]
        if prompts:
            self.queries.append(queue_prompts_query(session, prompts, channels))
            # The people's histories with their new prompts: a prompt that is not recorded after all is
            # taken out again by `recorded` (a rare race; one more statement then).
            assert decider is not None
            self._planned = [_prompt(d) for d in decided if d.decision.prompted]
            self.queries.append(repository.write_histories_query(decider.history_rows(self._planned)))

    def recorded(
        self, session: Session, answers: Sequence[list[Any]], stored_events: set[int]
    ) -> dict[int, DecisionRecord]:
        """The recorded decisions by event id, from the queries' `answers`; `stored_events`: the ids of the
        batch's events that were stored. A prompt that lost its day slot is recorded as suppressed now."""
        if not self._decided:
            return {}
        recorded = _records(answers[0])
        decided, rows = [], []
        for d, row in zip(self._decided, self._rows, strict=True):
            if d.event_id in stored_events:
                decided.append(d)
                rows.append(row)
        recorded |= _suppress_collided(session, decided, rows, recorded, self._ttl_s)
        kept = _kept(decided, recorded)
        if len(kept) != len(self._planned):
            lost = {p[0]: p[1] for p in self._planned if p not in kept}
            mine = [p for p in kept if p[0] in lost]
            assert self._decider is not None
            repository.write_histories(session, self._decider.history_rows(mine, lost))
        _log(decided, recorded)
        return recorded


def _suppress_collided(
    session: Session,
    decided: list[Decided],
    rows: list[dict[str, Any]],
    recorded: dict[int, DecisionRecord],
    ttl_s: int,
) -> dict[int, DecisionRecord]:
    """Record as suppressed (`global_daily_cap`) the prompts whose day slot another prompt took."""
    collided = [(d, row) for d, row in zip(decided, rows, strict=True) if d.event_id not in recorded]
    if not collided:
        return {}
    log.warning("day slot taken despite the person's lock", extra={"count": len(collided)})
    fallback = []
    for d, row in collided:
        instead = _row(d, Decision(Reason.GLOBAL_DAILY_CAP, d.decision.local_day), None, ttl_s)
        if "id" in row:
            instead |= {"id": row["id"], "landing_token_hash": None}
        fallback.append(instead)
    return _insert(session, fallback)


def _prompt(d: Decided) -> Prompt:
    assert d.decision.local_day is not None
    assert d.decision.campaign_id is not None
    return (d.subscriber_id, d.decided_at, d.decision.local_day, d.decision.campaign_id)


def _kept(decided: list[Decided], recorded: dict[int, DecisionRecord]) -> list[Prompt]:
    """The prompts recorded as prompts, for the people's histories."""
    return [
        _prompt(d)
        for d in decided
        if d.event_id in recorded and recorded[d.event_id].outcome == Outcome.PROMPTED
    ]


def _prompts(
    decided: list[Decided], recorded: dict[int, DecisionRecord]
) -> list[tuple[int, uuid.UUID, datetime]]:
    return [
        (r.id, d.subscriber_id, d.decided_at)
        for d in decided
        if (r := recorded[d.event_id]).outcome == Outcome.PROMPTED
    ]


def _log(decided: list[Decided], recorded: dict[int, DecisionRecord]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    for d in decided:
        log.info(
            "decision %s",
            recorded[d.event_id].reason,
            extra={
                "site": d.site_name,
                "site_id": d.site_id,
                "campaign_id": d.decision.campaign_id,
                # No trace of the person: a pseudonym in the logs would follow them from door to door.
            },
        )


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


_decisions = cast(Table, PromptDecision.__table__)
_events = cast(Table, ProximityEvent.__table__)
_RETURNED = [_decisions.c[name] for name in ("id", "event_id", "outcome", "reason", "campaign_id")]
_SLOT = ["subscriber_id", "local_day", "day_slot"]


def _insert(session: Session, rows: list[dict[str, Any]]) -> dict[int, DecisionRecord]:
    return _records(insert_rows(session.connection(), _decisions, rows, returning=_RETURNED, conflict=_SLOT))


def _insert_query(rows: list[dict[str, Any]]) -> Query:
    """The decisions' insert for a pipeline: only those whose event is stored by then."""
    return insert_query(
        _decisions, rows, returning=_RETURNED, conflict=_SLOT, existing=("event_id", _events.c.id)
    )


def _records(returned: Sequence[Any]) -> dict[int, DecisionRecord]:
    return {
        event_id: DecisionRecord(decision_id, outcome, reason, campaign_id)
        for decision_id, event_id, outcome, reason, campaign_id in returned
        if event_id is not None
    }


def record_answer(
    session: Session, subscriber_id: uuid.UUID, campaign_id: int, kind: ResponseKind, at: datetime
) -> None:
    """Keep a dismissal (the latest per campaign) or an acceptance (the first) in the person's history,
    where the policy reads them long after the raw response is purged; the caller holds the person's lock.
    Other answers change nothing the policy reads here ("not here" and "not this charity" are exclusions)."""
    if kind not in (ResponseKind.DISMISSED, ResponseKind.ACCEPTED):
        return
    row = repository.person_history(session, subscriber_id)
    dismissed = history.answers_of(row.dismissed)
    accepted = history.answers_of(row.accepted)
    if kind is ResponseKind.DISMISSED:
        dismissed[campaign_id] = max(at, dismissed.get(campaign_id, at))
    else:
        accepted[campaign_id] = min(at, accepted.get(campaign_id, at))
    row.dismissed = history.answers_doc(dismissed)
    row.accepted = history.answers_doc(accepted)
    row.updated_at = at
