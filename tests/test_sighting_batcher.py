"""The sighting batcher (group commit), on SQLite and PostgreSQL, with real threads and a real database.

Concurrent callers get their own results; jobs queued behind a busy writer are recorded in one transaction;
a bad job in a combined batch fails alone; the item limit splits batches but never a job.

The tests read the batcher's private `_queue` and `_busy`: the only way to know, without sleeping and hoping,
that a caller has queued its job (or that a writer has taken one), which is what makes the combining
deterministic to provoke."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.const import EventKind, Outcome
from server.core.db import make_sessionmaker
from server.core.security import KeySealer
from server.policy.decide import Reason
from server.policy.live import SiteRef
from server.presence.batcher import SightingBatcher
from server.presence.models import ProximityEvent, Visit
from server.presence.record import IngestConfig, Pending, Recorded, Sighting
from server.prompts.models import PromptDecision
from server.subscribers.service import opt_in
from tests.conftest import TEST_SECRET, Clock
from tests.world import Charity, make_charity

CONFIG = IngestConfig(visit_gap=timedelta(seconds=120), prompt_ttl_s=600)
WAIT_S = 20  # how long a poll waits for the threads before the test fails


def _people(session: Session, clock: Clock, count: int) -> list[uuid.UUID]:
    sealer = KeySealer(TEST_SECRET)
    ids = [
        opt_in(
            session,
            sealer,
            scopes=["volunteer"],
            language="de",
            consent_version="2026-11",
            rotation_exponent=10,
            now=clock(),
        ).subscriber.id
        for _ in range(count)
    ]
    session.commit()
    return ids


def _pending(
    site_id: int,
    person: uuid.UUID,
    key: str,
    when: datetime,
    kind: EventKind = EventKind.ENTER,
    dwell_s: float = 0.0,
) -> Pending:
    sighting = Sighting(key, "phone", None, kind, when, dwell_s=dwell_s)
    return Pending(person, SiteRef(site_id, "Europe/Berlin", "de"), sighting, when)


class Call(threading.Thread):
    """A request thread: records its job through the batcher and keeps its answer or its error."""

    def __init__(
        self,
        batcher: SightingBatcher,
        engine: Engine,
        items: Sequence[Pending],
        barrier: threading.Barrier | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.batcher, self.engine, self.items, self.barrier = batcher, engine, list(items), barrier
        self.results: list[Recorded] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.barrier is not None:
                self.barrier.wait(WAIT_S)
            self.results = self.batcher.record(self.items, CONFIG)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            self.error = exc

    def answer(self) -> list[Recorded]:
        self.join(WAIT_S)
        assert not self.is_alive(), "the caller is still waiting"
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def _wait_for_queue(batcher: SightingBatcher, length: int) -> None:
    _wait_until(lambda: len(batcher._queue) == length, f"{length} jobs are queued")


@contextmanager
def _held(engine: Engine, person: uuid.UUID) -> Iterator[None]:
    """Keep a writer's transaction on `person` waiting inside the database until the block ends.

    PostgreSQL: the person's row locked FOR UPDATE (the writer's FOR NO KEY UPDATE waits on it); SQLite: the
    database's write lock (the writer's first UPDATE waits, up to busy_timeout = 10 s)."""
    with engine.connect() as holder:
        if engine.dialect.name == "postgresql":
            holder.execute(text("SELECT id FROM subscribers WHERE id = :x FOR UPDATE"), {"x": person})
        else:
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()


def _blocked_in_database(engine: Engine) -> bool:
    """Whether a writer waits inside the database (observable on PostgreSQL only; SQLite: assumed)."""
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as probe:
        waiting = probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting == 1)


def _events(session: Session, person: uuid.UUID) -> list[str]:
    session.expire_all()
    return sorted(
        session.scalars(select(ProximityEvent.idempotency_key).where(ProximityEvent.subscriber_id == person))
    )


@pytest.mark.timeout(90)
def test_concurrent_callers_each_get_their_own_results(
    engine: Engine, session: Session, clock: Clock
) -> None:
    charity = make_charity(session, clock())  # a volunteer campaign; the clock's noon is daytime in Berlin
    people = _people(session, clock, 12)
    start = clock()

    def job(n: int, person: uuid.UUID) -> list[Pending]:
        # Jobs of different lengths (4 to 6 items), so a misaligned slice of the combined answer shows.
        repeats = 1 + n % 3
        return [
            _pending(charity.site_id, person, "a", start),
            *[_pending(charity.site_id, person, "a", start) for _ in range(repeats)],  # the same key again
            _pending(charity.site_id, person, "b", start + timedelta(seconds=20), EventKind.DWELL, 20),
            _pending(charity.site_id, person, "c", start + timedelta(seconds=30), EventKind.EXIT),
        ]

    batcher = SightingBatcher(make_sessionmaker(engine))
    barrier = threading.Barrier(len(people))
    calls = [Call(batcher, engine, job(n, person), barrier) for n, person in enumerate(people)]
    for call in calls:
        call.start()
    answers = [call.answer() for call in calls]

    for call, person, results in zip(calls, people, answers, strict=True):
        assert len(results) == len(call.items)
        enter, *again, dwell, leave = results
        assert enter.decision is not None
        assert not enter.duplicate
        assert (enter.decision.outcome, enter.decision.reason) == (Outcome.SUPPRESSED, Reason.DWELL_TOO_SHORT)
        assert again
        assert all(r == Recorded(duplicate=True) for r in again)
        assert dwell.decision is not None
        assert not dwell.duplicate
        assert (dwell.decision.outcome, dwell.decision.campaign_id) == (Outcome.PROMPTED, charity.campaign_id)
        assert leave == Recorded()

        # The decisions handed to this caller are this person's, about this job's events.
        assert _events(session, person) == ["a", "b", "c"]
        rows = session.execute(
            select(PromptDecision.id, PromptDecision.outcome, ProximityEvent.idempotency_key)
            .join(ProximityEvent, ProximityEvent.id == PromptDecision.event_id)
            .where(PromptDecision.subscriber_id == person)
            .order_by(ProximityEvent.idempotency_key)
        ).all()
        assert [tuple(row) for row in rows] == [
            (enter.decision.id, Outcome.SUPPRESSED, "a"),
            (dwell.decision.id, Outcome.PROMPTED, "b"),
        ]
        assert session.scalar(select(func.count()).where(Visit.subscriber_id == person)) == 1

    assert session.scalar(select(func.count()).select_from(ProximityEvent)) == 3 * len(people)
    assert session.scalar(select(func.count()).select_from(PromptDecision)) == 2 * len(people)


@pytest.mark.timeout(90)
def test_queued_jobs_are_combined_and_a_bad_one_fails_alone(
    engine: Engine, session: Session, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    charity = make_charity(session, clock())
    first, good, bad = _people(session, clock, 3)
    now = clock()
    batcher = SightingBatcher(make_sessionmaker(engine), writers=1)
    caplog.set_level(logging.WARNING, logger="nahbar.presence")

    with _held(engine, first):
        blocked = Call(batcher, engine, [_pending(charity.site_id, first, "first", now)])
        blocked.start()
        # Its job taken by the only writer, which now waits on the database.
        _wait_until(lambda: batcher._busy == 1 and not batcher._queue, "the first job is being written")
        _wait_until(lambda: _blocked_in_database(engine), "the writer waits on the held lock")
        fine = Call(batcher, engine, [_pending(charity.site_id, good, "good", now)])
        fine.start()
        _wait_for_queue(batcher, 1)  # the good job
        # No such site: the event's foreign key fails, and with it the whole combined transaction.
        broken = Call(batcher, engine, [_pending(999_999, bad, "bad", now)])
        broken.start()
        _wait_for_queue(batcher, 2)  # and the bad one
        assert blocked.is_alive()
        assert fine.is_alive()
        assert broken.is_alive()

    [answer] = blocked.answer()
    assert answer.decision is not None
    assert answer.decision.reason == Reason.DWELL_TOO_SHORT
    [answer] = fine.answer()
    assert answer.decision is not None
    assert answer.decision.reason == Reason.DWELL_TOO_SHORT
    with pytest.raises(IntegrityError):
        broken.answer()

    combined = [r for r in caplog.records if "combined batch failed" in r.getMessage()]
    assert len(combined) == 1  # the good and the bad job were one transaction, then retried one by one
    assert _events(session, first) == ["first"]
    assert _events(session, good) == ["good"]
    assert _events(session, bad) == []
    assert session.scalar(select(func.count()).where(Visit.subscriber_id == bad)) == 0
    assert not batcher._queue
    assert batcher._busy == 0


@pytest.mark.timeout(90)
def test_the_item_limit_splits_batches_but_never_a_job(
    engine: Engine, session: Session, clock: Clock
) -> None:
    charity: Charity = make_charity(session, clock())
    sizes = [2, 2, 1, 4, 1]  # with at most 3 items a batch: [2], [2, 1], [4] (whole), [1]
    blocker, *people = _people(session, clock, 1 + len(sizes))
    now = clock()
    batcher = SightingBatcher(make_sessionmaker(engine), max_items=3, writers=1)
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", committed)
    try:
        with _held(engine, blocker):
            blocked = Call(batcher, engine, [_pending(charity.site_id, blocker, "first", now)])
            blocked.start()
            _wait_until(lambda: batcher._busy == 1 and not batcher._queue, "the first job is being written")
            calls = []
            for n, (person, size) in enumerate(zip(people, sizes, strict=True)):
                at = [now + timedelta(seconds=i) for i in range(size)]
                items = [_pending(charity.site_id, person, f"k{i}", when) for i, when in enumerate(at)]
                calls.append(Call(batcher, engine, items))
                calls[-1].start()
                _wait_for_queue(batcher, n + 1)  # queued in this order
        assert len(blocked.answer()) == 1
        answers = [call.answer() for call in calls]
    finally:
        event.remove(engine, "commit", committed)

    for person, size, results in zip(people, sizes, answers, strict=True):
        assert len(results) == size
        assert _events(session, person) == [f"k{i}" for i in range(size)]
        # Each caller's answer is about its own person's events, also from the batch it shared ([2, 1]).
        decided = session.execute(
            select(PromptDecision.id, ProximityEvent.idempotency_key)
            .join(ProximityEvent, ProximityEvent.id == PromptDecision.event_id)
            .where(PromptDecision.subscriber_id == person)
        ).all()
        mine = {key: decision_id for decision_id, key in decided}
        assert [r.decision.id if r.decision else None for r in results] == [
            mine[f"k{i}"] for i in range(size)
        ]
    assert len(commits) == 1 + 4  # the first job, then the four batches the limit allows
