"""Bringing this worker's EID index up to the opt-ins other workers took.

A phone that opted in through another worker is unknown here until this worker looks. A periodic look
(the eid-opt-in-sync job) bounds how long that lasts; a gateway batch with an EID that resolves to nobody
asks for a look too, and waits for one that began after the batch arrived, so a sighting of someone who
opted in moments ago is recorded instead of acknowledged and dropped. Concurrent callers share one look.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from server.core.errors import ServiceUnavailable
from server.presence.eid_index import EidIndex, Keyed

log = logging.getLogger("nahbar.presence.eid")

# A look reads the opt-ins created since the previous look began, less this: a row's created_at is set
# before its transaction commits, and the workers' clocks may differ a little.
OVERLAP: Final = timedelta(seconds=120)
WAIT_S: Final = 10.0  # a caller waits at most this long for a look to finish


class OptInsUnavailable(ServiceUnavailable):
    code = "opt_ins_unavailable"


class OptInLook:
    """Looks for opt-ins this worker's index does not know yet; thread-safe."""

    def __init__(
        self,
        index: EidIndex,
        keys_since: Callable[[datetime], Iterable[Keyed]],
        clock: Callable[[], datetime],
        wait_s: float = WAIT_S,
    ) -> None:
        self._index = index
        self._keys_since = keys_since
        self._clock = clock
        self._wait_s = wait_s
        self._changed = threading.Condition()
        self._running = False
        self._finished_start = -1.0  # monotonic start of the newest look that finished
        self._since: datetime | None = None  # where the next look starts reading

    def since(self, arrived: float) -> int:
        """Return once a look that began at or after `arrived` (time.monotonic()) has finished; how many
        subscribers this call's own look added (0 when it shared another's)."""
        deadline = time.monotonic() + self._wait_s
        with self._changed:
            while self._finished_start < arrived:
                if not self._running:
                    self._running = True
                    break
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    raise OptInsUnavailable(
                        "The server is still catching up with new opt-ins; retry in a few seconds.",
                        headers={"Retry-After": "2"},
                    )
            else:
                return 0
        return self._look()

    def now(self) -> int:
        """Look now (the periodic job); how many subscribers were added."""
        return self.since(time.monotonic())

    def _look(self) -> int:
        started = time.monotonic()
        at = self._clock()
        finished = False
        try:
            since = self._since
            if since is None:  # the first look after the index was loaded with what was committed then
                loaded = self._index.synced_at
                since = (datetime.fromtimestamp(loaded, UTC) if loaded is not None else at) - OVERLAP
            added = self._index.add_missing(self._keys_since(since))
            finished = True
        finally:
            with self._changed:
                self._running = False
                if finished:
                    self._finished_start = started
                    self._since = at - OVERLAP
                self._changed.notify_all()
        if added:
            log.info("opt-ins from other workers added", extra={"subscribers": added})
        return added
