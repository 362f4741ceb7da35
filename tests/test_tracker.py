"""The tracker keeps phones' EIDs and the site's own beacons, drops everything else, and emits presence."""

from __future__ import annotations

import itertools
import uuid

import pytest

from beacon_agent.frames import EddystoneEID, EddystoneURL, IBeacon
from beacon_agent.tracker import Tracker, TrackerConfig

PHONE = EddystoneEID(eid=bytes.fromhex("0011223344556677"), tx_power=-18)  # -59 dBm at 1 m
SITE_BEACON = IBeacon(uuid=uuid.UUID(int=1), major=1, minor=2, tx_power=-59)


def tracker(**config: float) -> Tracker:
    counter = itertools.count()
    return Tracker(TrackerConfig(**config), new_id=lambda: f"evt-{next(counter):06d}")  # type: ignore[arg-type]


def walk(t: Tracker, rssi: float, start: float, seconds: int, frame: EddystoneEID = PHONE) -> float:
    """One advertisement a second at `rssi`, ticking as the agent does."""
    now = start
    for now in range(int(start), int(start + seconds)):
        t.observe(frame, rssi, float(now))
        t.tick(float(now))
    return float(now + 1)


def test_foreign_and_unwatched_frames_are_dropped_and_only_counted():
    t = tracker()
    t.observe(None, -40, 0.0)
    t.observe(SITE_BEACON, -40, 0.0)
    t.observe(EddystoneURL(url="https://example.org", tx_power=-20), -40, 0.0)
    assert (t.stats.seen, t.stats.kept, t.stats.dropped) == (3, 0, 3)
    assert len(t) == 0
    assert t.drain() == []


def test_the_sites_own_beacons_update_health_but_make_no_events():
    t = Tracker(watched=frozenset({"ibeacon:00000000-0000-0000-0000-000000000001/1/2"}))
    t.observe(SITE_BEACON, -70, 5.0)
    assert t.beacons["ibeacon:00000000-0000-0000-0000-000000000001/1/2"].last_seen == 5.0
    assert t.stats.kept == 1
    assert t.drain() == []


def test_a_walk_past_is_enter_dwells_and_exit_with_dwell_seconds():
    t = tracker(dwell_every_s=30, exit_after_s=20)
    after = walk(t, -65, 0, 75)
    for now in range(int(after), int(after) + 25):
        t.tick(float(now))
    events = t.drain()
    assert [e.kind for e in events] == ["enter", "dwell", "dwell", "exit"]
    assert [e.dwell_s for e in events] == [0.0, 30.0, 60.0, 74.0]
    assert {e.eid for e in events} == {"0011223344556677"}
    assert len({e.id for e in events}) == 4
    assert events[0].distance_m == pytest.approx(10 ** ((-59 + 65) / 22), rel=0.01)
    assert len(t) == 0  # forgotten once silent


def test_weak_readings_never_enter_and_hysteresis_holds_a_presence():
    far = tracker()
    walk(far, -95, 0, 60)
    assert far.drain() == []
    near = tracker(exit_after_s=20)
    now = walk(near, -70, 0, 10)
    now = walk(near, -89, now, 60)  # between exit (-92) and enter (-85): still present
    assert [e.kind for e in near.drain()] == ["enter", "dwell", "dwell"]
    walk(near, -100, now, 60)
    assert [e.kind for e in near.drain()][-1] == "exit"


def test_one_noisy_strong_reading_does_not_make_a_presence():
    t = tracker()
    t.observe(PHONE, -95, 0.0)
    for second in range(1, 5):
        t.observe(PHONE, -95, float(second))
    t.observe(PHONE, -60, 5.0)  # a reflection spike
    assert t.drain() == []


def test_memory_is_bounded_however_many_identifiers_pass():
    t = tracker(max_tracked=1_000)
    for n in range(20_000):
        t.observe(EddystoneEID(eid=n.to_bytes(8, "big"), tx_power=-18), -60, n / 100)
    assert len(t) == 1_000
    assert t.stats.evicted == 19_000
    kinds = [e.kind for e in t.drain()]
    assert kinds.count("enter") == 20_000
    assert kinds.count("exit") == 19_000  # an evicted presence is closed, not left open at the server
