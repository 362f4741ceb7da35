"""Combining concurrent gateway batches into one transaction (group commit for sightings).

Each request would otherwise pay for its own lock, loads, inserts and commit, whatever its size: a dozen round
trips for one event. Here a request queues its resolved sightings and waits; a request thread that finds a
free writer slot takes everything queued (up to a limit) and records it in one transaction, for itself and
the others, then hands on. Under light load a batch is one request and nothing waits; under heavy load
batches grow and the round trips per event fall, which is what lets one worker keep up.

A failing combined batch (one request's data, a deadlock) is retried request by request, so one bad request
fails alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.core.db import write_lock
from server.core.errors import ServiceUnavailable
from server.presence.record import IngestConfig, Pending, Recorded, record_sightings

log = logging.getLogger("nahbar.presence")

MAX_ITEMS: Final = 500  # sightings in one transaction; a single larger request still goes in whole
# Transactions at once. On PostgreSQL two: while one waits for the database, the other's Python runs (one
# worker at 100 prompts/s: p50 from 940 to 216 ms); more only split the queue into smaller, dearer
# transactions. On SQLite one: it has one writer anyway.
WRITERS_POSTGRESQL: Final = 2
WRITERS_SQLITE: Final = 1
# Every wait is bounded. A request waits this long for a recording thread to take its sightings, then gets
# 503 with Retry-After and nothing recorded; once taken, it waits for that transaction, whose own waits
# (a connection, a row lock, SQLite's writer) are bounded well below this.
QUEUE_WAIT_S: Final = 10.0
RECORD_WAIT_S: Final = 60.0


class SightingsBusy(ServiceUnavailable):
    code = "overloaded"


@dataclass(slots=True)
class _Job:
    items: list[Pending]
    config: IngestConfig
    gateways_seen: list[tuple[int, datetime]]
    results: list[Recorded] | None = None
    error: BaseException | None = None
    done: bool = False
    lead: bool = False  # this job's thread records batches (its own and the others' queued with it)
    wake: threading.Event = field(default_factory=threading.Event)  # done, or handed the lead


class SightingBatcher:
    """One per process; safe with any number of processes (the database's locks order them)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        max_items: int = MAX_ITEMS,
        writers: int | None = None,
        queue_wait_s: float = QUEUE_WAIT_S,
        record_wait_s: float = RECORD_WAIT_S,
    ):
        self._sessions = sessions
        self._max_items = max_items
        if writers is None:
            bind = sessions.kw.get("bind")
            sqlite = bind is not None and bind.dialect.name == "sqlite"
            writers = WRITERS_SQLITE if sqlite else WRITERS_POSTGRESQL
        self._writers = writers
        self._queue_wait_s = queue_wait_s
        self._record_wait_s = record_wait_s
        self._write_lock = write_lock(sessions)
        self._busy = 0  # threads recording now
        self._queue: list[_Job] = []  # jobs no recording thread has taken yet
        self._lock = threading.Lock()

    def record(
        self,
        items: Sequence[Pending],
        config: IngestConfig,
        gateways_seen: Sequence[tuple[int, datetime]] = (),
    ) -> list[Recorded]:
        """Record these sightings (committed when this returns) and answer in their order.

        The batch commits in the batcher's own session, before the answer; the caller holds no connection.
        Only the threads that have to are woken: a job's own when it is done, and the next waiting one's
        when a recording thread hands on."""
        job = _Job(list(items), config, list(gateways_seen))
        with self._lock:
            self._queue.append(job)
            if self._busy < self._writers:
                self._busy += 1
                job.lead = True
        if not job.lead and not job.wake.wait(self._queue_wait_s):
            with self._lock:
                if not job.lead and not job.done and job in self._queue:
                    self._queue.remove(job)  # nobody took it: it leaves the queue unrecorded
                    raise SightingsBusy(
                        "The server is busy recording other sightings; retry in a few seconds.",
                        headers={"Retry-After": "2"},
                    )
        if job.lead:
            try:
                while True:
                    job.wake.clear()  # it said "lead"; from here on it says "done"
                    if job.done:
                        break
                    with self._lock:
                        jobs = self._take() if self._queue else []
                    if jobs:
                        self._run(jobs)
                    else:  # another recording thread took this job; it wakes this one when done
                        self._until_done(job)
            finally:
                with self._lock:
                    if self._queue:  # hand on to the oldest waiting job's thread; the slot stays taken
                        successor = self._queue[0]
                        successor.lead = True
                        successor.wake.set()
                    else:
                        self._busy -= 1
        else:
            self._until_done(job)
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results

    def _until_done(self, job: _Job) -> None:
        """Wait for another thread's transaction with this job; bounded, as that transaction's waits are."""
        if not job.wake.wait(self._record_wait_s) and not job.done:
            # Its transaction may still commit: the caller retries, and the idempotency keys make that safe.
            raise SightingsBusy(
                "Recording these sightings is taking too long; retry in a few seconds.",
                headers={"Retry-After": "5"},
            )

    def _take(self) -> list[_Job]:
        """The oldest queued jobs up to the item limit (at least one); same settings only."""
        first = self._queue[0]
        taken: list[_Job] = []
        count = 0
        for job in self._queue:
            if taken and (count + len(job.items) > self._max_items or job.config != first.config):
                break
            taken.append(job)
            count += len(job.items)
        del self._queue[: len(taken)]
        return taken

    def _run(self, jobs: list[_Job]) -> None:
        """Record the jobs in one transaction; every job ends finished, whatever happens, so no caller waits
        for ever."""
        try:
            items = [item for job in jobs for item in job.items]
            latest: dict[int, datetime] = {}
            for job in jobs:
                for gateway_id, at in job.gateways_seen:
                    latest[gateway_id] = max(at, latest.get(gateway_id, at))
            with self._write_lock, self._sessions() as session:
                results = record_sightings(session, items, jobs[0].config, sorted(latest.items()))
                session.commit()
        except Exception as exc:
            if len(jobs) > 1:
                log.warning("combined batch failed; recording its requests one by one", exc_info=True)
                for job in jobs:
                    self._run([job])
                return
            self._finish(jobs[0], error=exc)
            return
        except BaseException as exc:  # interrupted: the waiting callers fail with it instead of hanging
            for job in jobs:
                self._finish(job, error=exc)
            raise
        start = 0
        for job in jobs:
            self._finish(job, results=results[start : start + len(job.items)])
            start += len(job.items)

    def _finish(
        self, job: _Job, *, results: list[Recorded] | None = None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            job.results, job.error, job.done = results, error, True
        job.wake.set()
