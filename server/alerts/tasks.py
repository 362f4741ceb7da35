"""The alert job: every minute, evaluate the conditions in one transaction, then send the mail outbox."""

from __future__ import annotations

import logging
import weakref
from datetime import datetime
from typing import Final

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.alerts import mail, service
from server.alerts.schemas import Alert
from server.core.config import Settings
from server.core.db import session_scope
from server.core.jobs import Job
from server.runtime import Runtime

log = logging.getLogger("nahbar.alerts")

EVERY_S: Final = 60.0

_warned: weakref.WeakSet[Engine] = weakref.WeakSet()  # processes (by engine) told that SMTP is not set


def evaluate(sessions: sessionmaker[Session], settings: Settings, now: datetime) -> list[Alert]:
    """Raise what became due, in one transaction: the states, the mails to send and the hooks' rows."""
    for session in session_scope(sessions):
        alerts = service.evaluate(session, settings, now)
    if alerts and not settings.smtp_enabled:
        engine = sessions.kw.get("bind")
        if not isinstance(engine, Engine) or engine not in _warned:
            if isinstance(engine, Engine):
                _warned.add(engine)
            log.warning(
                "alerts are not e-mailed: NAHBAR_SMTP_HOST is not set (set it and NAHBAR_SMTP_FROM to "
                "write to organisations' owners; this warning is given once)"
            )
    return alerts


def run(runtime: Runtime) -> int:
    """The scheduled job; returns the mails sent."""
    evaluate(runtime.sessions, runtime.settings, runtime.clock())
    if not runtime.settings.smtp_enabled:
        return 0
    return mail.send_due(runtime.sessions, runtime.settings, runtime.clock)


JOBS: list[Job] = [Job("alerts", run, every_s=EVERY_S)]
