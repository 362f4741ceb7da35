"""The rate limit clean-up: buckets idle for a whole period are full again and carry nothing; delete them."""

from __future__ import annotations

from typing import Final

from server.core.db import session_scope
from server.core.jobs import Job
from server.limits import repository
from server.runtime import Runtime

CLEANUP_EVERY_S: Final = 600.0
CLEANUP_BATCH: Final = 5_000  # rows per transaction: short locks


def delete_full(runtime: Runtime) -> int:
    """Delete every bucket that is full again (in the database store; the others forget on their own)."""
    now = runtime.clock().timestamp()
    deleted = 0
    while True:
        for session in session_scope(runtime.sessions):
            batch = repository.delete_full(session, now, CLEANUP_BATCH)
        deleted += batch
        if batch < CLEANUP_BATCH:
            return deleted


JOBS: list[Job] = [Job("rate-limit-cleanup", delete_full, every_s=CLEANUP_EVERY_S)]
