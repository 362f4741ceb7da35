"""The accounts cleanup: delete ended sessions, tokens and invites and old login attempts, in batches."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.accounts import service
from server.accounts.service import Purged
from server.core.db import session_scope
from server.runtime import Runtime

log = logging.getLogger("nahbar.accounts")

CLEANUP_BATCH: Final = 5_000  # rows per kind and transaction: short locks


def purge(sessions: sessionmaker[Session], now: datetime, batch: int = CLEANUP_BATCH) -> Purged:
    """One transaction per batch until a batch comes back short; an interrupted run continues next time."""
    total = Purged()
    while True:
        for session in session_scope(sessions):
            done = service.purge_batch(session, now, batch)
        total += done
        if done.most() < batch:
            break
    log.info(
        "accounts cleanup: %d login attempts, %d sessions, %d API tokens, %d invites deleted",
        total.login_attempts,
        total.sessions,
        total.api_tokens,
        total.invites,
    )
    return total


def run(runtime: Runtime) -> Purged:
    """The scheduled job (listed with the retention jobs)."""
    return purge(runtime.sessions, runtime.clock())
