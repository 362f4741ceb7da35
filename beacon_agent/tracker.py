"""Turn decoded frames into enter / dwell / exit events, keeping only what matters.

Only Eddystone-EID frames (opted-in phones) become presence events; the site's own beacons, when named in the
config, only update their health. Everything else is dropped where it arrives: the tracker never sees a MAC
address and keeps nothing of foreign advertisements but a counter.

When to report: `enter` at the first sighting whose smoothed RSSI reaches the enter threshold, then a `dwell`
at the first sighting at or past each of the dwell marks the server asks for (the minimum dwell of the site's
campaigns, the "likely staff" limit), each once per presence, and a slow periodic `dwell` that only says the
phone is still there. Enter and mark dwells are urgent (`urgent` is set): the server decides on them, so the
agent sends them at once.

A phone's EID changes every 2^K seconds. A new EID that appears near such a turn, while one present EID falls
silent at that moment, is taken to be that phone's next EID: it continues the presence (its marks are not
reported again) instead of entering anew. When that is not clear (no EID or several fell silent), it enters.
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

from beacon_agent.frames import (
    EDDYSTONE_SERVICE_UUID,
    EID_FRAME_LENGTH,
    EID_FRAME_TYPE,
    EddystoneEID,
    Frame,
    decode,
    identifier,
)
from beacon_agent.models import EventKind, PresenceEvent

INFINITY: Final = float("inf")
# Near a rotation: how far from the turn (phones' clocks drift) a new EID may be a phone's next one, how
# long a new EID's enter waits to see whether an EID fell silent as it appeared, and how close those two
# moments must be (a phone advertises every 100 ms to 1 s; passive scanning misses some).
HANDOVER_WINDOW_S: Final = 15.0
HANDOVER_WAIT_S: Final = 1.5
HANDOVER_GAP_S: Final = 1.2
HANDOVER_RECENT_S: Final = 5.0  # first heard longer ago, an EID that enters now came closer: no new EID
HANDOVER_MIN_AGE_S: Final = (
    3.0  # an EID seen for less than this is no phone's previous one (one-off sightings)
)
MIN_READINGS: Final = 3  # one reading, however strong, is no presence (a reflection, a burst of noise)
HANDOVER_MAX_PRESENT: Final = 256
SETTLE_EVERY_S: Final = 0.1
HANDOVER_RSSI_DB: Final = 10.0  # a new EID continues a silent one only if their smoothed RSSI are this close
HANDOVER_DB_PER_S: Final = 10.0  # pairing cost: a second between old and new counts as much as 10 dB
# Tracks a tick looks at, at most: when many came due at once (all first heard in the same second, after a
# start) the rest is looked at in the next ticks, so a tick stays short; their exits come that much later.
TICK_BUDGET: Final = 4_096  # beyond this many present phones nobody can tell them apart: enter


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Thresholds in dBm and seconds; the server can push new values (see the gateway config)."""

    enter_rssi: float = -85.0  # smoothed RSSI at or above this starts a presence
    exit_rssi: float = -92.0  # below this (hysteresis gap) for `exit_after_s` ends it
    exit_after_s: float = 20.0  # ...as does silence for this long
    # A periodic dwell says "still here"; the server keeps one visit while sightings are less than its visit
    # gap (120 s by default) apart, so this stays below that.
    dwell_every_s: float = 60.0
    # Dwell (s) at which the server decides something: reported at the first sighting at or past each.
    dwell_marks: tuple[float, ...] = (15.0, 1200.0)
    rotation_s: float = 1024.0  # phones' EID rotation period, 2^K seconds
    process_noise: float = 0.5  # Kalman q: how fast true RSSI may drift per sample
    measurement_noise: float = 16.0  # Kalman r: variance of one RSSI reading (BLE is noisy: ~4 dB sd)
    default_power_1m: float = -59.0  # calibrated RSSI at 1 m when a frame carries none usable
    path_loss_exponent: float = 2.2  # 2 in free space; more indoors and through windows
    max_tracked: int = 4_096  # memory bound however many identifiers pass


class EventIds:
    """Idempotency keys that cost a counter step: a random prefix per start (so keys from before a restart
    are never reused) and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


@dataclass(slots=True)
class _Track:
    eid: bytes
    rssi: float  # Kalman estimate
    variance: float
    power_1m: float
    first_seen: float
    last_seen: float
    last_strong: float  # last time the estimate was at or above exit_rssi
    due: int  # the second at which the timer wheel looks at it next; -1: no longer tracked
    present: bool = False
    pending: bool = False  # present, but its enter waits: it may be a present phone's next EID
    entered_at: float = 0.0
    next_mark: int = 0  # index of the first dwell mark not yet reported
    next_dwell: float = INFINITY  # when the next dwell (mark or periodic) is due, at a sighting
    last_dwell: float = 0.0
    emitted: int = 0  # events emitted for this presence
    enter_slot: int = -1  # where its enter lies among the undrained events, or -1
    enter_batch: int = -1  # ... in which batch of undrained events


@dataclass(slots=True)
class BeaconHealth:
    last_seen: float
    rssi: float


@dataclass(slots=True)
class TrackerStats:
    seen: int = 0
    kept: int = 0
    dropped: int = 0
    evicted: int = 0
    handovers: int = 0  # new EIDs taken as a present phone's next one


class Tracker:
    """Presence per EID, for the agent's event loop (not thread-safe)."""

    __slots__ = (
        "_config",
        "_dropped",
        "_evicted",
        "_forgotten",
        "_handovers",
        "_kept",
        "_new",
        "_seen",
        "_enter",
        "_events",
        "_every",
        "_exit",
        "_exit_after",
        "_batch",
        "_cancelled",
        "_marks",
        "_pending",
        "_settle_at",
        "_present",
        "_q",
        "_r",
        "_tracks",
        "_wheel",
        "_wheel_next",
        "beacons",
        "new_id",
        "urgent",
        "watched",
    )

    def __init__(
        self,
        config: TrackerConfig | None = None,
        watched: frozenset[str] = frozenset(),
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.watched = watched  # identifiers of the site's own beacons
        self.new_id = new_id or EventIds()
        self._seen = self._kept = self._dropped = self._evicted = self._forgotten = self._handovers = 0
        self.beacons: dict[str, BeaconHealth] = {}
        self.urgent = False  # an event the server decides on was emitted since the last drain
        self._tracks: OrderedDict[bytes, _Track] = OrderedDict()  # least recently seen first
        # EIDs with fewer than MIN_READINGS readings: [rssi, variance, first seen, last seen, readings, tx
        # power], in the order they were first seen. On a crowded street most EIDs are heard once or twice
        # and never become a track; this costs them a short list, not a track, a timer and an eviction.
        self._new: OrderedDict[bytes, list[float]] = OrderedDict()  # (popping the oldest of a dict is O(n))
        self._events: list[PresenceEvent | None] = []  # None: cancelled before anyone saw it
        self._cancelled = 0
        self._batch = 0  # counts drains
        self._present: set[bytes] = set()
        self._pending: list[bytes] = []  # present EIDs whose enter waits (near a rotation)
        self._settle_at = -INFINITY
        # Timer wheel: the tracks to look at in each second; a tick costs what comes due, not all tracked.
        self._wheel: dict[int, list[_Track]] = {}
        self._wheel_next: int | None = None
        self.config = config or TrackerConfig()

    @property
    def config(self) -> TrackerConfig:
        return self._config

    @config.setter
    def config(self, config: TrackerConfig) -> None:
        # The hot path reads these on every advertisement: plain attributes, not the config's.
        self._config = config
        self._enter, self._exit, self._exit_after = config.enter_rssi, config.exit_rssi, config.exit_after_s
        self._q, self._r, self._every = config.process_noise, config.measurement_noise, config.dwell_every_s
        marks = tuple(sorted({m for m in config.dwell_marks if m > 0}))
        changed = marks != getattr(self, "_marks", marks)
        self._marks = marks
        if changed:  # present phones keep the marks they passed, by their dwell so far, and none twice
            for track in self._tracks.values():
                if track.present and not track.pending:
                    passed = track.last_dwell - track.entered_at
                    track.next_mark = sum(1 for m in marks if m <= passed)
                    self._plan_dwell(track)

    @property
    def stats(self) -> TrackerStats:
        """The counters so far (counted in plain attributes: the hot path touches them on every advert)."""
        return TrackerStats(
            self._seen, self._kept, self._dropped, self._evicted + self._forgotten, self._handovers
        )

    def advert(
        self,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
        rssi: float,
        now: float,
    ) -> None:
        """Decode and track one advertisement, as bleak hands over its fields: the agent's hot path.

        An Eddystone-EID is read here without building a frame (it is most of what is kept, on a crowded
        street most of what is heard); `frames.decode` reads it the same way, and a test holds the two
        paths to the same events."""
        if service_data:
            data = service_data.get(EDDYSTONE_SERVICE_UUID)
            if data is not None and len(data) == EID_FRAME_LENGTH and data[0] == EID_FRAME_TYPE:
                tx_power = data[1]
                self.observe_eid(data[2:], tx_power - 256 if tx_power > 127 else tx_power, rssi, now)
                return
        self.observe(decode(manufacturer_data, service_data), rssi, now)

    def observe(self, frame: Frame | None, rssi: float, now: float) -> None:
        """Feed one advertisement (already decoded; None if it was not a beacon frame)."""
        if type(frame) is EddystoneEID:
            self.observe_eid(frame.eid, frame.tx_power, rssi, now)
            return
        self._seen += 1
        if frame is not None and self.watched:
            key = identifier(frame)
            if key is not None and key in self.watched:
                self._kept += 1
                self.beacons[key] = BeaconHealth(now, rssi)
                return
        self._dropped += 1

    def observe_eid(self, eid: bytes, tx_power: int, rssi: float, now: float) -> None:
        """One reading of a phone's EID."""
        self._seen += 1
        self._kept += 1
        track = self._tracks.get(eid)
        if track is None:
            track = self._first_readings(eid, tx_power, rssi, now)
            if track is None:
                return
        else:
            self._tracks.move_to_end(eid)
            variance = track.variance + self._q
            gain = variance / (variance + self._r)
            track.rssi += gain * (rssi - track.rssi)
            track.variance = variance - gain * variance
            track.last_seen = now
            if track.rssi >= self._exit:
                track.last_strong = now
        if track.present:
            if now >= track.next_dwell and not track.pending:
                self._dwell(eid, track, now)
        elif track.rssi >= self._enter:
            self._begin(eid, track, now)
        if self._pending and now >= self._settle_at:
            self._settle_at = now + SETTLE_EVERY_S  # near a turn only; not on every advertisement
            self._settle_pending(now)

    def _first_readings(self, eid: bytes, tx_power: int, rssi: float, now: float) -> _Track | None:
        """Smooth an EID's first readings in its short list; the track it becomes at MIN_READINGS within
        `exit_after_s`, else None."""
        new = self._new
        first = new.get(eid)
        if first is None or now - first[2] >= self._exit_after:
            if first is not None:
                del new[eid]  # too long ago: start afresh, at the end of the order
            new[eid] = [rssi, self._r, now, now, 1, tx_power]
            if len(new) > self._config.max_tracked:
                new.popitem(last=False)
                self._forgotten += 1
            return None
        variance = first[1] + self._q
        gain = variance / (variance + self._r)
        first[0] += gain * (rssi - first[0])
        first[1] = variance - gain * variance
        first[3] = now
        first[4] += 1
        if first[4] < MIN_READINGS:
            return None
        del new[eid]
        # Eddystone's tx_power is the RSSI at 0 m; 41 dB less is the usual 1 m figure.
        power = tx_power - 41.0 if -100 <= tx_power <= 20 else self._config.default_power_1m
        estimate = first[0]
        due = int(now + self._exit_after) + 1
        strong = now if estimate >= self._exit else first[2]
        track = _Track(eid, estimate, first[1], power, first[2], now, strong, due)
        self._tracks[eid] = track
        self._schedule(track)
        if len(self._tracks) > self._config.max_tracked:
            self._evict_oldest()
        return track

    # --- presence --------------------------------------------------------------------------------------

    def _begin(self, eid: bytes, track: _Track, now: float) -> None:
        track.present = True
        track.entered_at = track.last_dwell = now
        track.next_mark, track.emitted = 0, 0
        self._present.add(eid)
        if self._may_be_next_eid(track, now):
            track.pending = True
            self._pending.append(eid)
            return
        self._entered(eid, track, now)

    def _entered(self, eid: bytes, track: _Track, now: float) -> None:
        self._plan_dwell(track)
        track.enter_slot, track.enter_batch = len(self._events), self._batch
        self._emit("enter", eid, track, now, now)
        self.urgent = True

    def _plan_dwell(self, track: _Track) -> None:
        marks = self._marks
        mark = track.entered_at + marks[track.next_mark] if track.next_mark < len(marks) else INFINITY
        track.next_dwell = min(mark, track.last_dwell + self._every)

    def _dwell(self, eid: bytes, track: _Track, now: float) -> None:
        # At a sighting, never from the clock alone: a dwell claims the phone is still here.
        marks, dwell = self._marks, now - track.entered_at
        crossed = track.next_mark
        while track.next_mark < len(marks) and marks[track.next_mark] <= dwell:
            track.next_mark += 1  # several marks passed since the last sighting: one event says so
        track.last_dwell = now
        self._plan_dwell(track)
        self._emit("dwell", eid, track, now, track.entered_at)
        if track.next_mark > crossed:
            self.urgent = True

    def _end(self, eid: bytes, track: _Track, at: float) -> None:
        track.present = False
        self._present.discard(eid)
        if track.pending:  # its enter was never reported: nothing to end
            track.pending = False
            self._pending.remove(eid)
            return
        self._emit("exit", eid, track, at, track.entered_at)

    # --- a phone's next EID ----------------------------------------------------------------------------

    def _may_be_next_eid(self, track: _Track, now: float) -> bool:
        """Whether this new presence could be a present phone's next EID: it was first heard moments ago,
        near a rotation, and a present EID fell silent just before."""
        if track.first_seen < now - HANDOVER_RECENT_S or len(self._present) <= 1:
            return False  # known for a while (it came closer), or nobody else is here
        if len(self._present) > HANDOVER_MAX_PRESENT:
            return False
        period = self._config.rotation_s
        offset = track.first_seen % period
        return min(offset, period - offset) <= HANDOVER_WINDOW_S and bool(self._predecessors(track))

    def _predecessors(self, track: _Track) -> list[_Track]:
        """The present EIDs that may have been this new EID's phone before it turned: heard for a while,
        last heard shortly before the new one first was, and not since."""
        first = track.first_seen
        return [
            old
            for old_eid in self._present
            if (old := self._tracks.get(old_eid)) is not None
            and not old.pending
            and old is not track
            and 0 <= first - old.last_seen <= HANDOVER_GAP_S
            and old.first_seen <= first - HANDOVER_MIN_AGE_S
        ]

    def _settle_pending(self, now: float) -> None:
        """Decide the waiting enters that can be decided: an enter as soon as no present EID can be the new
        one's predecessor, a continuation once the possible ones stayed silent (or the wait is over).

        Near a turn several phones change EIDs within the same second or two; the new EIDs are paired with
        the silent ones one to one, closest in time and RSSI first, and only pairs that fit (RSSI within
        HANDOVER_RSSI_DB) continue; the others enter."""
        decided: list[tuple[_Track, list[_Track]]] = []
        waiting: list[bytes] = []
        for eid in self._pending:
            track = self._tracks.get(eid)
            if track is None or not track.pending:
                continue
            olds = self._predecessors(track)
            over = now - track.first_seen >= HANDOVER_WAIT_S
            if olds and not over and any(now - old.last_seen < HANDOVER_GAP_S for old in olds):
                waiting.append(eid)  # a possible predecessor may yet be heard again: it is another phone
                continue
            decided.append((track, olds))
        self._pending = waiting
        if not decided:
            return
        pairs = sorted(
            (
                abs(new.rssi - old.rssi) + HANDOVER_DB_PER_S * (new.first_seen - old.last_seen),
                n,
                old,
            )
            for n, (new, olds) in enumerate(decided)
            for old in olds
            if abs(new.rssi - old.rssi) <= HANDOVER_RSSI_DB
        )
        taken: set[int] = set()
        continued: dict[int, _Track] = {}
        for _cost, n, old in pairs:
            if n in continued or id(old) in taken:
                continue
            taken.add(id(old))
            continued[n] = old
        for n, (track, _olds) in enumerate(decided):
            track.pending = False
            predecessor = continued.get(n)
            if predecessor is not None:
                self._continue(predecessor.eid, track.eid, track)
            else:
                self._entered(track.eid, track, track.entered_at)

    def _continue(self, old_eid: bytes, eid: bytes, track: _Track) -> None:
        """The phone of `old_eid` now broadcasts `eid`: the presence goes on under the new EID."""
        old = self._tracks.pop(old_eid)
        old.due = -1
        self._present.discard(old_eid)
        track.entered_at, track.next_mark = old.entered_at, old.next_mark
        track.last_dwell, track.emitted = old.last_dwell, old.emitted
        self._plan_dwell(track)
        self._handovers += 1

    # --- time ------------------------------------------------------------------------------------------

    def _schedule(self, track: _Track) -> None:
        second = track.due
        bucket = self._wheel.get(second)
        if bucket is None:
            self._wheel[second] = [track]
        else:
            bucket.append(track)
        if self._wheel_next is None or second < self._wheel_next:
            self._wheel_next = second

    def tick(self, now: float) -> None:
        """Advance time: end presences that went weak or silent, and forget the silent. Costs what comes
        due (the tracks last looked at `exit_after_s` ago), not what is tracked."""
        if self._pending:
            self._settle_pending(now)
        new, horizon = self._new, now - self._exit_after
        while new:  # first readings too old to become a track: forgotten, oldest first
            eid, first = new.popitem(last=False)
            if first[2] > horizon:
                new[eid] = first
                new.move_to_end(eid, last=False)
                break
        if self._wheel_next is None:
            return
        last = int(now)
        seconds: list[int] | range
        if last - self._wheel_next > len(self._wheel):  # a long gap: the due seconds, not every second
            seconds = sorted(s for s in self._wheel if s <= last)
        else:
            seconds = range(self._wheel_next, last + 1)
        exit_after, tracks, wheel = self._exit_after, self._tracks, self._wheel
        budget = TICK_BUDGET
        for second in seconds:
            bucket = wheel.pop(second, None)
            if bucket is None:
                continue
            if len(bucket) > budget:  # the rest waits for the next tick: a burst is spread, not paid at once
                wheel[second] = bucket[budget:]
                bucket = bucket[:budget]
            budget -= len(bucket)
            for track in bucket:
                if track.due != second:
                    continue  # forgotten, evicted, or due later
                seen = track.last_seen
                silent = now - seen >= exit_after
                if track.present and (silent or now - track.last_strong >= exit_after):
                    # The person left after the last sighting that still counted; dwell ends there.
                    self._end(track.eid, track, seen if silent else track.last_strong)
                if silent:
                    del tracks[track.eid]
                    track.due = -1
                    continue
                due = int((track.last_strong if track.present else seen) + exit_after) + 1
                if due <= last:
                    due = last + 1
                track.due = due
                later_bucket = wheel.get(due)
                if later_bucket is None:
                    wheel[due] = [track]
                else:
                    later_bucket.append(track)
            if budget <= 0:
                break
        self._wheel_next = min(wheel) if wheel else None

    def _evict_oldest(self) -> None:
        eid, track = self._tracks.popitem(last=False)
        track.due = -1
        self._evicted += 1
        if not track.present:
            return
        if track.emitted == 1 and track.enter_batch == self._batch:
            # Its enter is all that was emitted, and nobody has taken it yet: forget it instead of
            # reporting an enter and an exit nobody will be asked about.
            self._events[track.enter_slot] = None
            self._cancelled += 1
            track.present = False
            self._present.discard(eid)
            return
        self._end(eid, track, track.last_seen)

    def _emit(self, kind: EventKind, eid: bytes, track: _Track, at: float, since: float) -> None:
        distance = 10 ** ((track.power_1m - track.rssi) / (10 * self._config.path_loss_exponent))
        track.emitted += 1
        self._events.append(
            PresenceEvent(
                self.new_id(),
                kind,
                eid.hex(),
                datetime.fromtimestamp(at, UTC),
                round(track.rssi, 1),
                round(distance, 2),
                round(at - since, 1),
            )
        )

    def drain(self) -> list[PresenceEvent]:
        """The events emitted since the last drain, oldest first."""
        events, self._events = self._events, []
        self._batch += 1
        self.urgent = False
        if self._cancelled:
            self._cancelled = 0
            return [event for event in events if event is not None]
        return cast(list[PresenceEvent], events)  # nothing cancelled: no None in it

    def __len__(self) -> int:
        """EIDs remembered: tracks, and those with their first readings."""
        return len(self._tracks) + len(self._new)
