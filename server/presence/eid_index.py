"""Resolve a broadcast EID to its subscriber with one dict lookup.

For every active subscriber the index holds the EIDs of the previous, current and next rotation window
(phones' clocks drift). It is rebuilt when the window changes and updated on opt-in and withdrawal.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mobile_api.eid import eid, window_start


@dataclass(frozen=True, slots=True)
class Keyed:
    """What the index needs of a subscriber: the id, the identity key and the rotation exponent."""

    subscriber_id: uuid.UUID
    identity_key: bytes
    k: int


class EidIndex:
    def __init__(self, load: Callable[[], Iterable[Keyed]], clock: Callable[[], float]) -> None:
        self._load = load
        self._clock = clock
        self._lock = threading.Lock()
        self._by_eid: dict[bytes, uuid.UUID] = {}
        self._by_subscriber: dict[uuid.UUID, tuple[Keyed, tuple[bytes, ...]]] = {}
        self._built_for: int | None = None  # the counter window (at k=0 granularity: seconds) last built

    @staticmethod
    def _eids(keyed: Keyed, now: int) -> tuple[bytes, ...]:
        step = 1 << keyed.k
        current = window_start(now, keyed.k)
        return tuple(eid(keyed.identity_key, current + d * step, keyed.k) for d in (-1, 0, 1))

    def _window_marker(self, now: int) -> int:
        # Rebuild whenever any subscriber's window could have changed: the smallest k in use decides.
        ks = {keyed.k for keyed, _ in self._by_subscriber.values()} or {10}
        return window_start(now, min(ks))

    def rebuild(self) -> None:
        """Recompute every subscriber's EIDs for the windows around now."""
        now = int(self._clock())
        entries = list(self._load())
        by_eid: dict[bytes, uuid.UUID] = {}
        by_sub: dict[uuid.UUID, tuple[Keyed, tuple[bytes, ...]]] = {}
        for keyed in entries:
            eids = self._eids(keyed, now)
            by_sub[keyed.subscriber_id] = (keyed, eids)
            for e in eids:
                by_eid[e] = keyed.subscriber_id
        with self._lock:
            self._by_eid, self._by_subscriber = by_eid, by_sub
            self._built_for = self._window_marker(now)

    def add(self, keyed: Keyed) -> None:
        eids = self._eids(keyed, int(self._clock()))
        with self._lock:
            self._by_subscriber[keyed.subscriber_id] = (keyed, eids)
            for e in eids:
                self._by_eid[e] = keyed.subscriber_id

    def remove(self, subscriber_id: uuid.UUID) -> None:
        with self._lock:
            entry = self._by_subscriber.pop(subscriber_id, None)
            if entry is not None:
                for e in entry[1]:
                    if self._by_eid.get(e) == subscriber_id:
                        del self._by_eid[e]

    def resolve(self, broadcast: bytes) -> uuid.UUID | None:
        """The subscriber broadcasting `broadcast` now, or None (the caller then drops the event)."""
        if self._built_for is None or self._window_marker(int(self._clock())) != self._built_for:
            self.rebuild()
        return self._by_eid.get(broadcast)

    def __len__(self) -> int:
        return len(self._by_subscriber)
