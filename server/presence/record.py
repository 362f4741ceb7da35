"""Recording sightings: a batch is stored idempotently, merged into one visit per person and site, decided
and recorded in one transaction, in a fixed number of statements whatever the batch's size.

Both paths come here: a gateway's events about resolved EIDs and an iOS phone's own iBeacon sighting, so a
person seen by a gateway and by their own phone at one site is one visit with one decision. The people of the
batch are locked first (in id order), so concurrent batches about the same person, from other gateways or
other workers, decide one after the other on what the earlier ones recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Connection, Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from server.core import direct
from server.core.bulk import insert_query, insert_rows, new_ids_query, update_query, update_rows
from server.core.const import EventKind
from server.core.direct import Query
from server.core.listparam import in_list
from server.impact import tally
from server.policy.decide import NOT_YET
from server.policy.live import DeciderLoad, SiteRef
from server.policy.repository import lock_queries, people_of
from server.policy.service import Decided, DecisionRecord, DecisionWrites, record_decisions
from server.presence.models import PHONE_ROWS, ProximityEvent, Visit
from server.prompts.deliveries import channels_of, channels_query
from server.prompts.models import PromptDecision
from server.sites.models import Gateway


@dataclass(slots=True)
class IngestConfig:
    visit_gap: timedelta
    prompt_ttl_s: int
    max_age: timedelta = timedelta(days=14)  # older sightings are refused: the retention purge's horizon


@dataclass(frozen=True, slots=True)
class Sighting:
    """One presence report about a known person: a gateway's event, or an iOS phone's own sighting."""

    key: str  # idempotency key: per gateway, or per subscriber for phone sightings
    source: Literal["gateway", "phone"]
    gateway_id: int | None
    kind: EventKind
    observed_at: datetime
    rssi: float | None = None
    distance_m: float | None = None
    dwell_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Pending:
    """A sighting to record: whose (resolved), where, and when the server received it."""

    subscriber_id: uuid.UUID
    site: SiteRef
    sighting: Sighting
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a sighting did."""

    duplicate: bool = False  # its key was stored before: nothing done
    decision: DecisionRecord | None = None  # the decision it led to, if any
    stale: bool = False  # stored, but too old to decide on
    unknown: bool = False  # the person no longer exists (withdrew meanwhile): dropped, nothing stored


@dataclass(slots=True)
class _Visit:
    id: int | None  # None until inserted
    subscriber_id: uuid.UUID
    site_id: int
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    dwell_s: float
    min_distance_m: float | None
    decided_at: datetime | None
    changed: bool = False


_VISIT_FIELDS = ("started_at", "last_seen_at", "ended_at", "dwell_s", "min_distance_m", "decided_at")


def record_sightings(
    session: Session,
    items: Sequence[Pending],
    config: IngestConfig,
    gateways_seen: Iterable[tuple[int, datetime]] = (),
) -> list[Recorded]:
    """Record a batch (results in its order); the caller commits. `gateways_seen` updates fleet health."""
    ttl = timedelta(seconds=config.prompt_ttl_s)

    def may_decide(item: Pending) -> bool:
        return (
            item.sighting.kind is not EventKind.EXIT and item.received_at - item.sighting.observed_at <= ttl
        )

    # Every read of the batch in one round trip, in this order: the gateways' rows first, before any person's
    # lock (batches of one gateway wait on its row, never the other way round); then the people's locks, so
    # the reads after them see what earlier batches about the same people committed. They read for the whole
    # batch: a duplicate's visit or an unknown person's history is read for nothing, which costs less than
    # another round trip.
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    reads = _Reads()
    reads.add("seen", [(_GATEWAY_SEEN, {"gateway": g, "at": at}) for g, at in gateways_seen])
    if not items:
        reads.run(connection)
        return []
    reads.add("lock", lock_queries(connection.dialect.name, (item.subscriber_id for item in items)))
    keys = _stored_keys_queries(items)
    reads.add("keys", [query for _, query in keys])
    reads.add("visits", [_VisitBook.query(items, config.visit_gap)])
    deciding = [item for item in items if may_decide(item)]
    people_deciding = {item.subscriber_id for item in deciding}
    moments = [(i.site, i.received_at) for i in deciding]
    plan = DeciderLoad(connection.dialect.name, people_deciding, moments) if deciding else None
    reads.add("decider", plan.queries if plan else [])
    # PostgreSQL: ids for the visits, events and decisions this batch may add (as many as there could be;
    # unused ones are a gap in the sequence), and the push channels of those it may prompt. Knowing them, all
    # the batch's writes go in one more round trip.
    if postgres:
        reads.add("ids", [new_ids_query(_NEW_ROWS, len(items))])
        reads.add("channels", [channels_query(people_deciding)] if deciding else [])
    reads.run(connection)
    people = people_of(reads["lock"][-1])
    stored = {
        (source, owner, key)
        for (source, _), rows in zip(keys, reads["keys"], strict=True)
        for owner, key in rows
    }
    visits = _VisitBook(reads["visits"][0], config.visit_gap)
    ids = [list(drawn) for drawn in zip(*reads["ids"][0], strict=True)] if postgres else None
    channels = channels_of(reads["channels"][0]) if postgres and deciding else {}

    results: list[Recorded] = [Recorded(unknown=True)] * len(items)
    known = [n for n, item in enumerate(items) if item.subscriber_id in people]
    # The people are locked, so no other transaction can store one of their keys meanwhile: the keys stored
    # before are the duplicates (and so is a key's second appearance in the batch). Knowing that first, the
    # events are inserted once with their visit instead of inserted and then updated.
    fresh: list[int] = []  # positions in the batch
    for n in known:
        key = _key(items[n])
        if key in stored:
            results[n] = Recorded(duplicate=True)
        else:
            stored.add(key)
            fresh.append(n)
    if not fresh:
        return results
    candidates = [items[n] for n in fresh if may_decide(items[n])]
    decider = (
        plan.decider(reads["decider"], [people[p] for p in {item.subscriber_id for item in candidates}])
        if plan is not None and candidates
        else None
    )
    event_visits: list[tuple[int, _Visit]] = []
    decided: list[_Choice] = []
    for n in fresh:
        item = items[n]
        visit = visits.merge(item)
        event_visits.append((n, visit))
        if item.sighting.kind is EventKind.EXIT or visit.decided_at is not None:
            results[n] = Recorded()
            continue
        if not may_decide(item):
            # Reported too late (an outbox after an outage, an offline phone): the person has moved on, and
            # a prompt now would be about a place they left. Counted, not decided; a fresh sighting may be.
            results[n] = Recorded(stale=True)
            continue
        assert decider is not None
        decision = decider.decide(item.subscriber_id, item.site, item.received_at, visit.dwell_s)
        day = decision.local_day
        slot = decider.take_slot(item.subscriber_id, day) if decision.prompted and day is not None else None
        if decision.reason not in NOT_YET:
            visit.decided_at = item.received_at
            visit.changed = True
        decided.append((n, visit, item, decision, slot))
        results[n] = Recorded()
    started = visits.new_visits()
    if ids is None:
        visits.write(session)
        event_of = _insert_events(session, [(items[n], n, _id(visit)) for n, visit in event_visits])
        _mark_unstored(results, fresh, event_of)
        to_record = [_decided(d, event_of[d[0]]) for d in decided if d[0] in event_of]
        recorded = record_decisions(session, to_record, config.prompt_ttl_s, decider) if decider else {}
    else:
        # One round trip: visits, events, decisions, deliveries, each in one statement, in this order. An
        # event takes its drawn id; one not stored after all takes its decision and deliveries with it.
        visit_ids, event_ids, decision_ids = ids
        writes = visits.write_queries(visit_ids)
        planned = {n: event_ids[k] for k, (n, _) in enumerate(event_visits)}
        inserts, events = _event_queries([(items[n], n, _id(visit), planned[n]) for n, visit in event_visits])
        decisions = DecisionWrites(
            session,
            [_decided(d, planned[d[0]]) for d in decided],
            config.prompt_ttl_s,
            decision_ids,
            channels,
            decider,
        )
        written = direct.pipelined(connection, [*writes, *events, *decisions.queries])
        at = len(writes) + len(events)
        event_of = _event_ids(inserts, written[len(writes) : at])
        _mark_unstored(results, fresh, event_of)
        recorded = decisions.recorded(session, written[at:], set(event_of.values()))
    for n, *_ in decided:
        if n in event_of:
            results[n] = Recorded(decision=recorded[event_of[n]])
    _tally(session, items, started, decided, event_of, recorded)
    return results


def _tally(
    session: Session,
    items: Sequence[Pending],
    started: list[_Visit],
    decided: list[_Choice],
    event_of: dict[int, int],
    recorded: dict[int, DecisionRecord],
) -> None:
    """The batch's visits begun and decisions recorded, to the impact ledger (its funnel counts)."""
    zones = {item.site.id: item.site.timezone for item in items}
    facts = []
    for n, visit, item, decision, _ in decided:
        record = recorded.get(event_of.get(n, -1))
        if record is None:
            continue
        facts.append(
            tally.DecisionFact(
                item.site.id,
                item.site.timezone,
                item.received_at,
                record.reason,
                record.campaign_id,
                # A prompt that lost its day slot was recorded as suppressed, without its variant.
                decision.variant_id if record.reason == decision.reason else None,
                visit.id,
            )
        )
    now = max(item.received_at for item in items)
    tally.sightings(session, [(v.site_id, zones[v.site_id], v.started_at) for v in started], facts, now)


_Choice = tuple[int, "_Visit", Pending, Any, int | None]  # position, visit, sighting, decision, day slot


def _decided(choice: _Choice, event_id: int) -> Decided:
    _, visit, item, decision, slot = choice
    return Decided(
        item.subscriber_id,
        item.site.id,
        item.site.name,
        _id(visit),
        event_id,
        item.received_at,
        decision,
        slot,
    )


def _mark_unstored(results: list[Recorded], fresh: list[int], event_of: dict[int, int]) -> None:
    for n in fresh:
        if n not in event_of:  # stored by someone else after all: the unique index is the last guard
            results[n] = Recorded(duplicate=True)


class _Reads:
    """A batch's reads as one list of queries, run in one round trip; their answers by the name of each
    part."""

    def __init__(self) -> None:
        self._queries: list[Query] = []
        self._parts: dict[str, tuple[int, int]] = {}
        self._answers: list[list[Any]] = []

    def add(self, name: str, queries: Sequence[Query]) -> None:
        start = len(self._queries)
        self._queries += queries
        self._parts[name] = (start, len(self._queries))

    def run(self, connection: Connection) -> None:
        self._answers = direct.pipelined(connection, self._queries)

    def __getitem__(self, name: str) -> list[list[Any]]:
        start, end = self._parts[name]
        return self._answers[start:end]


def _id(visit: _Visit) -> int:
    assert visit.id is not None  # written before the decisions
    return visit.id


def _key(item: Pending) -> tuple[str, Any, str]:
    """An event's idempotency key: per gateway, or per subscriber for a phone's own sightings."""
    s = item.sighting
    return (s.source, s.gateway_id if s.source == "gateway" else item.subscriber_id, s.key)


_GATEWAY_SEEN = (
    update(Gateway)
    .where(Gateway.id == bindparam("gateway"))
    .values(last_seen_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
_events = cast(Table, ProximityEvent.__table__)
_GATEWAY_KEYS = select(_events.c.gateway_id, _events.c.idempotency_key).where(
    in_list(_events.c.gateway_id, "owners"),
    in_list(_events.c.idempotency_key, "keys"),
)
_PHONE_KEYS = select(_events.c.subscriber_id, _events.c.idempotency_key).where(
    text(PHONE_ROWS),
    in_list(_events.c.subscriber_id, "owners"),
    in_list(_events.c.idempotency_key, "keys"),
)


# What an inserted event answers with: its id and its idempotency key's owner and key.
_EVENT_IDS = [_events.c.id, _events.c.gateway_id, _events.c.subscriber_id, _events.c.idempotency_key]


def _stored_keys_queries(items: Sequence[Pending]) -> list[tuple[str, Query]]:
    """The queries for which of these events' keys are stored already (by the unique indexes over them),
    per source; their rows are (owner, key)."""
    queries: list[tuple[str, Query]] = []
    for source, query in (("gateway", _GATEWAY_KEYS), ("phone", _PHONE_KEYS)):
        keys = [_key(item) for item in items if item.sighting.source == source]
        if keys:
            params = {"owners": sorted({k[1] for k in keys}), "keys": sorted({k[2] for k in keys})}
            queries.append((source, (query, params)))
    return queries


def _insert_events(session: Session, events: list[tuple[Pending, int, int]]) -> dict[int, int]:
    """Store the events (sighting, position in the batch, visit id) one insert per source after the other;
    their ids by position. ON CONFLICT DO NOTHING stays as the guard the unique indexes give."""
    inserts = _event_inserts([(item, n, visit_id, None) for item, n, visit_id in events])
    connection = session.connection()
    answers = [insert_rows(connection, _events, *args, **kw) for _, _, args, kw in inserts]
    return _event_ids(inserts, answers)


def _event_queries(events: list[_Event]) -> tuple[_Inserts, list[Query]]:
    """PostgreSQL: the same inserts as queries, the events with their drawn ids, to run with the visits' in
    one round trip."""
    inserts = _event_inserts(events)
    return inserts, [insert_query(_events, *args, **kw) for _, _, args, kw in inserts]


# An event to store: its sighting, its position in the batch, its visit's id and its own drawn id, if any.
_Event = tuple[Pending, int, int, int | None]
# Per source of the events there are: the source, its events, and the arguments of their insert.
_Inserts = list[tuple[str, list[_Event], tuple[Any, ...], dict[str, Any]]]


def _event_inserts(events: list[_Event]) -> _Inserts:
    inserts: _Inserts = []
    for source in ("gateway", "phone"):
        mine = [event for event in events if event[0].sighting.source == source]
        if not mine:
            continue
        rows = [_event_row(item, visit_id, event_id) for item, _, visit_id, event_id in mine]
        options = {
            "returning": _EVENT_IDS,
            # The predicate must be a literal: PostgreSQL infers a partial index only from a provable WHERE.
            "conflict": [("subscriber_id" if source == "phone" else "gateway_id"), "idempotency_key"],
            "conflict_where": text(PHONE_ROWS) if source == "phone" else None,
        }
        inserts.append((source, mine, (rows,), options))
    return inserts


def _event_ids(inserts: _Inserts, answers: Sequence[Sequence[Any]]) -> dict[int, int]:
    """The stored events' ids by position in the batch, from the inserts' rows (`_EVENT_IDS`)."""
    ids: dict[tuple[str, Any, str], int] = {}
    for (source, _, _, _), rows in zip(inserts, answers, strict=True):
        for row in rows:
            ids[(source, row[1] if source == "gateway" else row[2], row[3])] = row[0]
    return {n: ids[_key(item)] for _, mine, _, _ in inserts for item, n, _, _ in mine if _key(item) in ids}


def _event_row(item: Pending, visit_id: int, event_id: int | None) -> dict[str, Any]:
    s = item.sighting
    return {
        **({"id": event_id} if event_id is not None else {}),
        "visit_id": visit_id,
        "gateway_id": s.gateway_id,
        "idempotency_key": s.key,
        "site_id": item.site.id,
        "subscriber_id": item.subscriber_id,
        "kind": s.kind.value,
        "observed_at": s.observed_at,
        "received_at": item.received_at,
        "rssi": s.rssi,
        "distance_m": s.distance_m,
        "dwell_s": s.dwell_s,
        "source": s.source,
    }


_RECENT_VISITS = select(
    Visit.id,
    Visit.subscriber_id,
    Visit.site_id,
    Visit.started_at,
    Visit.last_seen_at,
    Visit.ended_at,
    Visit.dwell_s,
    Visit.min_distance_m,
    Visit.decided_at,
).where(
    in_list(Visit.subscriber_id, "people"),
    in_list(Visit.site_id, "sites"),
    Visit.last_seen_at >= bindparam("since"),
)


class _VisitBook:
    """The batch's people's recent visits, merged in memory and written back in two statements."""

    def __init__(self, rows: Iterable[Any], gap: timedelta) -> None:
        self._gap = gap
        self._by_key: dict[tuple[uuid.UUID, int], list[_Visit]] = {}
        for visit in (_Visit(*row) for row in rows):
            self._by_key.setdefault((visit.subscriber_id, visit.site_id), []).append(visit)

    @staticmethod
    def query(items: Sequence[Pending], gap: timedelta) -> Query:
        """The recent visits of these sightings' people at their sites (rows for the constructor)."""
        since = min(item.sighting.observed_at for item in items) - gap
        people = {item.subscriber_id for item in items}
        sites = {item.site.id for item in items}
        return (_RECENT_VISITS, {"people": sorted(people), "sites": sorted(sites), "since": since})

    def merge(self, item: Pending) -> _Visit:
        """One walk past one site is one visit, across EID rotations, the site's gateways and the own phone:
        the latest visit seen within the gap (and begun before the sighting's gap ends: a late report must
        not join a later visit), else a new one."""
        s = item.sighting
        when = s.observed_at
        known = self._by_key.setdefault((item.subscriber_id, item.site.id), [])
        near = [v for v in known if v.last_seen_at >= when - self._gap and v.started_at <= when + self._gap]
        if near:
            visit = max(near, key=lambda v: v.last_seen_at)
        else:
            visit = _Visit(None, item.subscriber_id, item.site.id, when, when, None, 0.0, None, None)
            known.append(visit)
        visit.started_at = min(visit.started_at, when)
        visit.last_seen_at = max(visit.last_seen_at, when)
        visit.dwell_s = max(visit.dwell_s, s.dwell_s, (visit.last_seen_at - visit.started_at).total_seconds())
        if s.distance_m is not None:
            visit.min_distance_m = min(visit.min_distance_m or s.distance_m, s.distance_m)
        if s.kind is EventKind.EXIT:
            visit.ended_at = max(visit.ended_at or when, when)
        elif visit.ended_at is not None and when > visit.ended_at:
            visit.ended_at = None  # back again within the gap: the same visit goes on
        visit.changed = True
        return visit

    def new_visits(self) -> list[_Visit]:
        """The visits this batch begins (their ids are set once written)."""
        return self._changed()[0]

    def _changed(self) -> tuple[list[_Visit], list[_Visit]]:
        """The changed visits: (new, stored)."""
        visits = [v for known in self._by_key.values() for v in known if v.changed]
        return [v for v in visits if v.id is None], [v for v in visits if v.id is not None]

    def write(self, session: Session) -> None:
        """Insert the new visits (learning their ids) and update the stored ones that changed."""
        new, old = self._changed()
        if new:
            rows = [_visit_row(v) for v in new]
            returning = [_visits.c.id, _visits.c.subscriber_id, _visits.c.site_id, _visits.c.started_at]
            # Two new visits of one person at one site in a batch never start at the same moment (they would
            # be one visit), so these three columns say which row got which id.
            inserted = insert_rows(session.connection(), _visits, rows, returning=returning)
            ids = {(row[1], row[2], row[3]): row[0] for row in inserted}
            for visit in new:
                visit.id = ids[(visit.subscriber_id, visit.site_id, visit.started_at)]
        if old:
            update_rows(session.connection(), _visits, "id", [_visit_update(v) for v in old])

    def write_queries(self, ids: list[int]) -> list[Query]:
        """PostgreSQL: the same writes as queries, the new visits taking ids drawn from their sequence."""
        new, old = self._changed()
        assert len(ids) >= len(new)
        queries: list[Query] = []
        if new:
            for visit, visit_id in zip(new, ids, strict=False):
                visit.id = visit_id
            queries.append(insert_query(_visits, [{"id": v.id, **_visit_row(v)} for v in new]))
        if old:
            queries.append(update_query(_visits, "id", [_visit_update(v) for v in old]))
        return queries


_visits = cast(Table, Visit.__table__)
# The tables whose ids a PostgreSQL batch draws before writing (`new_ids_query`), in this order.
_NEW_ROWS = [_visits, _events, cast(Table, PromptDecision.__table__)]


def _visit_row(v: _Visit) -> dict[str, Any]:
    return {
        "subscriber_id": v.subscriber_id,
        "site_id": v.site_id,
        **{f: getattr(v, f) for f in _VISIT_FIELDS},
    }


def _visit_update(v: _Visit) -> dict[str, Any]:
    return {"id": v.id, **{f: getattr(v, f) for f in _VISIT_FIELDS}}
