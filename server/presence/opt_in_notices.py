"""Telling every worker of an opt-in (or a withdrawal) the moment it commits: PostgreSQL LISTEN/NOTIFY.

The worker that takes an opt-in adds it to its own EID index; the others learnt of it from the periodic look
(every 10 s, server/presence/opt_ins.py) or when a gateway's batch brought an EID nobody here knew. On
PostgreSQL the opt-in's transaction also sends a notice (`pg_notify`, delivered on commit), and each worker
listens on a connection of its own in a background thread, reads the new subscriber's key by id and adds it
to its index: every worker resolves the new phone's EIDs within milliseconds of the commit (bench/
opt_in_propagation.py measures it). A withdrawal's notice removes the person from every worker's index. The
periodic look stays as the fallback for notices lost while a listener was reconnecting; after each
(re)connection the listener looks once itself. SQLite has no notices: the look and the on-demand look remain.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from server.core import metrics
from server.presence.eid_index import EidIndex, Keyed

log = logging.getLogger("nahbar.presence.eid")

CHANNEL: Final = "nahbar_opt_ins"
WITHDRAWN: Final = "-"  # a payload starting with this names a withdrawal
WAIT_S: Final = 0.2  # how often the listener looks up from waiting, to see whether it should stop
RECONNECT_S: Final = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits between tries while the database is away
_NOTIFY: Final = text("SELECT pg_notify(:channel, :payload)")


def _notify(session: Session, payload: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def announce_opt_in(session: Session, subscriber_id: uuid.UUID) -> None:
    """Have every worker's listener add this subscriber once the session's transaction commits."""
    _notify(session, str(subscriber_id))


def announce_withdrawal(session: Session, subscriber_id: uuid.UUID) -> None:
    """Have every worker's listener drop this subscriber once the session's transaction commits."""
    _notify(session, WITHDRAWN + str(subscriber_id))


def _parse(payload: str) -> tuple[bool, uuid.UUID] | None:
    withdrawn = payload.startswith(WITHDRAWN)
    try:
        return withdrawn, uuid.UUID(payload.removeprefix(WITHDRAWN))
    except ValueError:
        return None


class OptInListener:
    """LISTENs for opt-in notices on a dedicated connection in a thread, and updates this worker's index."""

    def __init__(
        self,
        database_url: str,
        index: EidIndex,
        keys_of: Callable[[Sequence[uuid.UUID]], Iterable[Keyed]],
        look: Callable[[], object],
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._index = index
        self._keys_of = keys_of
        self._look = look
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Set while LISTEN is in force and what came before it was looked for (tests wait for it).
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nahbar-opt-in-notices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(WAIT_S * 5)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    if self._index.loaded:
                        self._look()  # what committed while nobody here listened
                    if failures:
                        log.info("listening for opt-in notices again")
                    failures = 0
                    self.listening.set()
                    self._listen(connection)
            except Exception as exc:  # the database is away: wait, connect again; the periodic look covers
                self.listening.clear()
                if failures == 0:
                    log.warning(
                        "opt-in notices interrupted; the periodic look covers meanwhile",
                        extra={"error": type(exc).__name__},
                    )
                self._stopping.wait(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])
                failures += 1
        self.listening.clear()

    def _listen(self, connection: psycopg.Connection[Any]) -> None:
        while not self._stopping.is_set():
            notices = list(connection.notifies(timeout=WAIT_S, stop_after=1))
            if not notices:
                continue
            notices += connection.notifies(timeout=0)  # the rest of a burst, handled together
            self._handle([notice.payload for notice in notices])

    def _handle(self, payloads: list[str]) -> None:
        added: list[uuid.UUID] = []
        for parsed in filter(None, map(_parse, payloads)):
            withdrawn, subscriber_id = parsed
            if withdrawn:
                self._index.remove(subscriber_id)
            else:
                added.append(subscriber_id)
        if added and self._index.loaded:  # not loaded yet: the load reads them
            count = self._index.add_missing(self._keys_of(added))
            metrics.OPT_IN_NOTICES.labels("added").inc(count)
            metrics.OPT_IN_NOTICES.labels("known").inc(len(added) - count)
