"""The impact job: fold the ledger into daily counts every half minute, so today's funnel is current."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.core.db import session_scope
from server.core.jobs import Job
from server.impact.fold import FOLD_BATCH, fold
from server.runtime import Runtime

FOLD_EVERY_S: Final = 30.0


def fold_all(sessions: sessionmaker[Session], now: datetime) -> int:
    """Fold until the ledger is empty (one transaction per batch); returns the rows folded."""
    total = 0
    while True:
        for session in session_scope(sessions):
            done = fold(session, now)
        total += done
        if done < FOLD_BATCH:
            return total


def run(runtime: Runtime) -> int:
    return fold_all(runtime.sessions, runtime.clock())


JOBS: list[Job] = [Job("impact-fold", run, every_s=FOLD_EVERY_S, at_start=True)]
