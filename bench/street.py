"""The street in front of the window, for the moment benchmark: people walking past or stopping at the door
at 1.4 m/s, their phones advertising their Eddystone-EIDs every 100 ms into BlueZ (dbusmock's bluez5 on a
private system bus), with an RSSI that rises and falls by log-distance path loss and a few dB of noise.

Everything random is drawn from one seeded generator, so every run sees the same street. The advertisements
actually sent are logged with their wall-clock time (the agent stamps its events with the same clock).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from mobile_api.eid import eid, window_start
from tests.bluez_mock import MockBlueZ, eddystone_eid

POWER_1M: Final = -59.0  # dBm at 1 m: a phone advertising at about 0 dBm
PATH_LOSS_EXPONENT: Final = 2.2  # the tracker's default: a street, a window in between
NOISE_DB: Final = 3.0  # standard deviation of one reading (fading, the body, the phone's orientation)
SPEED: Final = 1.4  # m/s: walking pace
HALF_PATH_M: Final = 25.0  # heard from 25 m before the door to 25 m past it (about -90 dBm mean)
PAVEMENT_M: Final = 2.5  # a walker's path from the window
DOOR_M: Final = 1.5  # where someone who stops stands, from the gateway
ADVERT_INTERVAL_S: Final = (
    0.1  # by default: Android's INTERVAL_LOW / ADVERTISE_MODE_LOW_LATENCY, about 100 ms
)
ADVERT_DELAY_S: Final = 0.01  # the random 0-10 ms advDelay the Bluetooth spec adds to every interval
TICK_S: Final = 0.02  # the adverts due within a tick go to BlueZ in one D-Bus call
# The Eddystone frame's ranging data: the power at 0 m, 41 dB above the 1 m figure (as the tracker reads it).
TX_POWER_0M: Final = int(POWER_1M) + 41

Kind = Literal["walker", "stopper"]


def mean_rssi(distance_m: float) -> float:
    """Log-distance path loss: the mean RSSI at `distance_m` from the gateway."""
    return POWER_1M - 10 * PATH_LOSS_EXPONENT * math.log10(max(distance_m, 0.3))


def distance_for(rssi: float) -> float:
    """The distance at which the mean RSSI is `rssi` (the inverse of `mean_rssi`)."""
    return float(10 ** ((POWER_1M - rssi) / (10 * PATH_LOSS_EXPONENT)))


@dataclass(frozen=True)
class Walk:
    """One person's way past the window: in from 25 m before the door, a stop at the door (stoppers), on to
    25 m past it. `start` is seconds after the street opens."""

    kind: Kind
    start: float
    stop_s: float = 0.0

    @property
    def lateral_m(self) -> float:
        return DOOR_M if self.kind == "stopper" else PAVEMENT_M

    @property
    def duration(self) -> float:
        return 2 * HALF_PATH_M / SPEED + self.stop_s

    def along(self, t: float) -> float | None:
        """Metres along the pavement relative to the door (negative: still coming) `t` seconds after the
        street opened; None before the person is heard or after they are gone."""
        t -= self.start
        walk_in = HALF_PATH_M / SPEED
        if t < 0 or t > self.duration:
            return None
        if t < walk_in:
            return -HALF_PATH_M + SPEED * t
        if t < walk_in + self.stop_s:
            return 0.0
        return SPEED * (t - walk_in - self.stop_s)

    def distance(self, t: float) -> float | None:
        x = self.along(t)
        return None if x is None else math.hypot(x, self.lateral_m)


@dataclass
class Phone:
    """An opted-in phone: its identity key (the EID is computed as the app does) and its walk."""

    number: int
    identity_key: bytes
    k: int
    walk: Walk
    rng: random.Random
    token: str = ""  # its device token for the mobile API
    path: str | None = None
    next_advert: float = 0.0
    _eid: tuple[int, bytes] | None = None
    sent_eid: bytes = b""  # the EID BlueZ has for the device now
    reported: int = 0  # the RSSI BlueZ last signalled for the device
    adverts: list[tuple[float, int]] = field(default_factory=list)  # (wall-clock time sent, RSSI)
    eids: dict[str, float] = field(default_factory=dict)  # EID (hex) -> when it was first advertised

    def eid_at(self, now: float) -> bytes:
        window = window_start(int(now), self.k)
        if self._eid is None or self._eid[0] != window:
            self._eid = (window, eid(self.identity_key, int(now), self.k))
            self.eids.setdefault(self._eid[1].hex(), now)
        return self._eid[1]

    def reading(self, distance_m: float) -> int:
        return round(mean_rssi(distance_m) + self.rng.gauss(0.0, NOISE_DB))


def plan(walkers: int, stoppers: int, spread_s: float, seed: int) -> list[Walk]:
    """The walks in random order, their starts spread evenly over `spread_s`; stoppers stay 18-28 s."""
    rng = random.Random(seed)
    walker: list[Kind] = ["walker"]
    stopper: list[Kind] = ["stopper"]
    kinds = walker * walkers + stopper * stoppers
    rng.shuffle(kinds)
    step = spread_s / max(1, len(kinds) - 1)
    return [
        Walk(kind, round(n * step, 3), rng.uniform(18.0, 28.0) if kind == "stopper" else 0.0)
        for n, kind in enumerate(kinds)
    ]


class Street:
    """Drives the phones' advertisements into BlueZ from a thread, in real time."""

    def __init__(
        self,
        bluez: MockBlueZ,
        phones: list[Phone],
        interval_s: float = ADVERT_INTERVAL_S,
        loss: float = 0.0,
        rssi_delta: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bluez = bluez
        self.phones = phones
        self.interval_s = interval_s
        self.loss = (
            loss  # the share of adverts the gateway does not hear (scan duty cycle, channel, collision)
        )
        self.missed = 0
        # BlueZ signals an RSSI change of less than this much as nothing (src/device.c device_set_rssi: 8 dB
        # unless a client's discovery filter is active, then 0, every advert).
        self.rssi_delta = rssi_delta
        self.unsignalled = 0
        self._clock = clock
        self.opened_at = 0.0
        self.calls = 0
        self.late_ticks = 0  # ticks that began more than a tick late (the machine was busy)
        self._by_path: dict[str, Phone] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="street", daemon=True)

    @property
    def duration(self) -> float:
        return max(p.walk.start + p.walk.duration for p in self.phones)

    def open(self) -> None:
        self.opened_at = self._clock()
        for phone in self.phones:
            phone.next_advert = self.opened_at + phone.walk.start
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        end = self.opened_at + self.duration
        tick = self.opened_at
        cleared = self.opened_at
        while not self._stop.is_set():
            now = self._clock()
            if now > end:
                return
            if now - tick > 2 * TICK_S:
                self.late_ticks += 1
            self._send_due(now)
            if now - cleared > 10:
                self._bluez.clear_calls()
                cleared = now
            tick += TICK_S
            tick = max(tick, now)
            self._stop.wait(max(0.0, tick + TICK_S - self._clock()))

    def _send_due(self, now: float) -> None:
        batch: list[tuple[str, int]] = []
        for phone in self.phones:
            if phone.next_advert > now:
                continue
            phone.next_advert += self.interval_s + phone.rng.uniform(0.0, ADVERT_DELAY_S)
            distance = phone.walk.distance(now - self.opened_at)
            if distance is None:
                continue
            if self.loss and phone.rng.random() < self.loss:
                self.missed += 1
                continue
            rssi = phone.reading(distance)
            current = phone.eid_at(now)
            frame = eddystone_eid(current, tx_power=TX_POWER_0M)
            if phone.path is None:  # the first advertisement: BlueZ makes the device (InterfacesAdded)
                address = f"5E:11:0A:00:{phone.number >> 8:02X}:{phone.number & 0xFF:02X}"
                sent = self._clock()
                phone.path = self._bluez.add_device(address, rssi, service_data=frame)
                self._by_path[phone.path] = phone
                phone.sent_eid = current
                phone.reported = rssi
                phone.adverts.append((sent, rssi))
                self.calls += 1
                continue
            if current != phone.sent_eid:  # the EID rotated: BlueZ sees new service data
                self._bluez.set_service_data(phone.path, frame)
                phone.sent_eid = current
                self.calls += 1
            elif self.rssi_delta and abs(rssi - phone.reported) < self.rssi_delta:
                self.unsignalled += 1
                continue
            phone.reported = rssi
            batch.append((phone.path, rssi))
        if batch:
            sent = self._clock()
            self._bluez.advertise(batch)
            self.calls += 1
            for path, rssi in batch:
                self._by_path[path].adverts.append((sent, rssi))
