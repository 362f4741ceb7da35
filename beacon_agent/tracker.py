"""Turn decoded frames into enter / dwell / exit events, keeping only what matters.

Only Eddystone-EID frames (opted-in phones) become presence events; the site's own beacons, when named in the
config, only update their health. Everything else is dropped where it arrives: the tracker never sees a MAC
address and keeps nothing of foreign advertisements but a counter.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from beacon_agent.frames import EddystoneEID, Frame, identifier
from beacon_agent.models import EventKind, PresenceEvent


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Thresholds in dBm and seconds; the server can push new values (see the gateway config)."""

    enter_rssi: float = -85.0  # smoothed RSSI at or above this starts a presence
    exit_rssi: float = -92.0  # below this (hysteresis gap) for `exit_after_s` ends it
    exit_after_s: float = 20.0  # ...as does silence for this long
    dwell_every_s: float = 30.0
    process_noise: float = 0.5  # Kalman q: how fast true RSSI may drift per sample
    measurement_noise: float = 16.0  # Kalman r: variance of one RSSI reading (BLE is noisy: ~4 dB sd)
    default_power_1m: float = -59.0  # calibrated RSSI at 1 m when a frame carries none usable
    path_loss_exponent: float = 2.2  # 2 in free space; more indoors and through windows
    max_tracked: int = 4_096  # memory bound however many identifiers pass


@dataclass(slots=True)
class _Track:
    rssi: float  # Kalman estimate
    variance: float
    power_1m: float
    last_seen: float
    last_strong: float  # last time the estimate was at or above exit_rssi
    present: bool = False
    entered_at: float = 0.0
    last_dwell: float = 0.0


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


@dataclass(slots=True)
class Tracker:
    config: TrackerConfig = field(default_factory=TrackerConfig)
    watched: frozenset[str] = frozenset()  # identifiers of the site's own beacons
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    stats: TrackerStats = field(default_factory=TrackerStats)
    beacons: dict[str, BeaconHealth] = field(default_factory=dict)
    _tracks: OrderedDict[bytes, _Track] = field(default_factory=OrderedDict)
    _events: list[PresenceEvent] = field(default_factory=list)

    def observe(self, frame: Frame | None, rssi: float, now: float) -> None:
        """Feed one advertisement (already decoded; None if it was not a beacon frame)."""
        self.stats.seen += 1
        if type(frame) is EddystoneEID:
            self.stats.kept += 1
            self._sample(frame.eid, rssi, frame.tx_power, now)
            return
        if frame is not None and self.watched:
            key = identifier(frame)
            if key is not None and key in self.watched:
                self.stats.kept += 1
                self.beacons[key] = BeaconHealth(now, rssi)
                return
        self.stats.dropped += 1

    def _sample(self, eid: bytes, rssi: float, tx_power: int, now: float) -> None:
        cfg = self.config
        track = self._tracks.get(eid)
        if track is None:
            # Eddystone's tx_power is the RSSI at 0 m; 41 dB less is the usual 1 m figure.
            power = tx_power - 41.0 if -100 <= tx_power <= 20 else cfg.default_power_1m
            track = _Track(rssi, cfg.measurement_noise, power, now, now)
            self._tracks[eid] = track
            if len(self._tracks) > cfg.max_tracked:
                self._evict_oldest(now)
        else:
            self._tracks.move_to_end(eid)
            variance = track.variance + cfg.process_noise
            gain = variance / (variance + cfg.measurement_noise)
            track.rssi += gain * (rssi - track.rssi)
            track.variance = (1.0 - gain) * variance
            track.last_seen = now
        if track.rssi >= cfg.exit_rssi:
            track.last_strong = now
        if not track.present and track.rssi >= cfg.enter_rssi:
            track.present = True
            track.entered_at = track.last_dwell = now
            self._emit("enter", eid, track, now)
        elif track.present and now - track.last_dwell >= cfg.dwell_every_s:
            # At a sighting, never from the clock alone: a dwell claims the phone is still here.
            track.last_dwell = now
            self._emit("dwell", eid, track, now)

    def tick(self, now: float) -> None:
        """Advance time: end presences that went weak or silent, and forget the silent."""
        cfg = self.config
        gone: list[bytes] = []
        for eid, track in self._tracks.items():
            silent = now - track.last_seen >= cfg.exit_after_s
            weak = now - track.last_strong >= cfg.exit_after_s
            if track.present and (silent or weak):
                # The person left after the last sighting that still counted; dwell ends there, not at `now`.
                self._emit("exit", eid, track, track.last_seen if silent else track.last_strong)
                track.present = False
            if silent:
                gone.append(eid)
        for eid in gone:
            del self._tracks[eid]

    def _evict_oldest(self, now: float) -> None:
        eid, track = self._tracks.popitem(last=False)
        self.stats.evicted += 1
        if track.present:
            self._emit("exit", eid, track, track.last_seen)

    def _emit(self, kind: EventKind, eid: bytes, track: _Track, at: float) -> None:
        distance = 10 ** ((track.power_1m - track.rssi) / (10 * self.config.path_loss_exponent))
        self._events.append(
            PresenceEvent(
                id=self.new_id(),
                kind=kind,
                eid=eid.hex(),
                observed_at=datetime.fromtimestamp(at, UTC),
                rssi=round(track.rssi, 1),
                distance_m=round(distance, 2),
                dwell_s=round(at - track.entered_at, 1) if kind != "enter" else 0.0,
            )
        )

    def drain(self) -> list[PresenceEvent]:
        """The events emitted since the last drain, oldest first."""
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._tracks)
