"""Retention jobs: roll raw sightings and decisions up into daily aggregates, then purge them (hourly, and at
start)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.accounts import tasks as accounts_tasks
from server.core.db import session_scope
from server.core.jobs import Job
from server.retention import service
from server.runtime import Runtime

log = logging.getLogger("nahbar.retention")

PURGE_BATCH: Final = 5_000  # rows per delete transaction: short locks, bounded WAL growth


@dataclass(frozen=True, slots=True)
class RetentionReport:
    aggregated: int  # (site, day) aggregate rows written
    events_deleted: int  # raw proximity events, gateway and phone
    visits_deleted: int
    decisions_deleted: int  # with their deliveries and responses


def purge(
    sessions: sessionmaker[Session], retention_days: int, now: datetime, batch: int = PURGE_BATCH
) -> RetentionReport:
    """Roll up, commit, then delete in batches of `batch`, one transaction each: the aggregates are durable
    before any raw row goes, and an interrupted purge simply continues on the next run."""
    for session in session_scope(sessions):
        raw_cutoff = service.cutoff(session, retention_days, now)
        aggregated = service.aggregate(session, now, raw_cutoff)
    events = visits = decisions = 0
    while True:
        for session in session_scope(sessions):
            counts = service.purge_batch(session, raw_cutoff, batch)
        events += counts.events
        visits += counts.visits
        decisions += counts.decisions
        if max(counts.events, counts.visits, counts.decisions) < batch:
            break
    report = RetentionReport(aggregated, events, visits, decisions)
    log.info(
        "retention: %d aggregate rows written, %d events, %d visits and %d decisions deleted",
        aggregated,
        events,
        visits,
        decisions,
        extra={"cutoff": raw_cutoff.isoformat()},
    )
    return report


def run(runtime: Runtime) -> RetentionReport:
    """The scheduled job."""
    return purge(runtime.sessions, runtime.settings.retention_days, runtime.clock())


JOBS: list[Job] = [
    Job("retention", run, every_s=3600, at_start=True),
    Job("accounts-cleanup", accounts_tasks.run, every_s=3600, at_start=True),
]
