"""Decode + track throughput on one core, against the decode-only rate of a peer parser (beacontools).

Both sides get the same advertisements (bench.mix), built before anything is timed, in the form each takes:
the agent bleak's dictionaries, beacontools the raw AD structures. Rounds interleave the three
measurements, so a slower or faster spell of the machine falls on all of them alike.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from beacon_agent.frames import decode
from beacon_agent.tracker import Tracker
from bench.mix import Street

COUNT: Final = 200_000
ROUNDS: Final = 5
PER_SECOND: Final = 4_000  # advertisements per simulated second: ~1,000 phones at 1 Hz plus the rest
START: Final = 1_700_000_000.0

# What the agent's scanner callback gets: manufacturer data, service data, RSSI, the time it arrived.
Ad = tuple[dict[int, bytes], dict[str, bytes], float, float]


@dataclass(frozen=True, slots=True)
class Rate:
    """Advertisements per second over the rounds."""

    best: float
    median: float
    runs: list[float]

    @classmethod
    def of(cls, count: int, seconds: list[float]) -> Rate:
        runs = [count / s for s in seconds]
        return cls(max(runs), statistics.median(runs), runs)


@dataclass(frozen=True, slots=True)
class Throughput:
    count: int
    mix: list[int]  # advertisements of each part of bench.mix.PARTS
    per_second: int
    cpu: int | None  # the core the process was pinned to
    agent: Rate  # decode + observe, tick and drain once per simulated second
    decode_only: Rate
    peer: Rate
    peer_name: str
    kept: int
    dropped: int
    events: int
    decoded: dict[str, int]  # frames our decode returned, by type
    peer_decoded: dict[str, int]  # frames beacontools returned, by type


def pin_to_one_core() -> int | None:
    """Run on one core, the one the process is on now, where the OS allows it."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _agent_round(seconds: list[list[Ad]], watched: frozenset[str]) -> tuple[float, Tracker, int]:
    tracker = Tracker(watched=watched)
    observe, tick, drain = tracker.observe, tracker.tick, tracker.drain
    events = 0
    started = time.perf_counter()
    for number, second in enumerate(seconds):
        for manufacturer_data, service_data, rssi, now in second:
            observe(decode(manufacturer_data, service_data), rssi, now)
        tick(START + number + 1)
        events += len(drain())
    return time.perf_counter() - started, tracker, events


def _decode_round(ads: list[Ad]) -> float:
    started = time.perf_counter()
    for manufacturer_data, service_data, _rssi, _now in ads:
        decode(manufacturer_data, service_data)
    return time.perf_counter() - started


def _peer_round(parse: Callable[[bytes], object], raws: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in raws:
        parse(raw)
    return time.perf_counter() - started


def measure(count: int = COUNT, rounds: int = ROUNDS) -> Throughput:
    """Build the mix, then time the agent's path, its decode alone and the peer's decode, interleaved."""
    try:
        from beacontools import parse_packet  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit(
            "beacontools is not installed: `make bench` installs it into the venv for the benchmark"
        ) from None
    core = pin_to_one_core()
    street = Street()
    built, mix = street.build(count)
    # Each advertisement arrives at its own time, 1/PER_SECOND apart, as the agent's clock would stamp it.
    ads = [
        (ad.manufacturer_data, ad.service_data, ad.rssi, START + n / PER_SECOND) for n, ad in enumerate(built)
    ]
    seconds = [ads[i : i + PER_SECOND] for i in range(0, count, PER_SECOND)]
    raws = [ad.raw for ad in built]
    decoded = Counter(type(decode(m, s)).__name__ for m, s, _, _ in ads)
    peer_decoded = Counter(type(parse_packet(raw)).__name__ for raw in raws)

    agent_s: list[float] = []
    decode_s: list[float] = []
    peer_s: list[float] = []
    for _ in range(rounds):
        elapsed, tracker, events = _agent_round(seconds, street.watched)
        agent_s.append(elapsed)
        decode_s.append(_decode_round(ads))
        peer_s.append(_peer_round(parse_packet, raws))
    return Throughput(
        count=count,
        mix=mix,
        per_second=PER_SECOND,
        cpu=core,
        agent=Rate.of(count, agent_s),
        decode_only=Rate.of(count, decode_s),
        peer=Rate.of(count, peer_s),
        peer_name=f"beacontools {_version('beacontools')} (parse_packet)",
        kept=tracker.stats.kept,
        dropped=tracker.stats.dropped,
        events=events,
        decoded=dict(decoded.most_common()),
        peer_decoded=dict(peer_decoded.most_common()),
    )


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"
