"""The server's EID table for 1,000,000 subscribers: load, rotation, memory, lookup, opt-in and withdrawal.

Run in a fresh process (`python -m bench.eid_table`), which imports only the index and what it imports, so
resident memory is the table's and not the benchmark's. Subscribers are made one at a time as the index
loads them (a prebuilt list of a million would be measured instead), their identity keys drawn from a seeded
generator, so the benchmark can recompute any subscriber's EIDs to look them up.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

from bench.agent_memory import peak_kib, rss_kib
from mobile_api.eid import eid, window_start
from server.presence.eid_index import EidIndex, Keyed

SUBSCRIBERS: Final = 1_000_000
K: Final = 10
ROTATIONS: Final = 3
LOOKUPS: Final = 200_000  # half of them EIDs being broadcast now, half unknown
LOOKUP_ROUNDS: Final = 5
SEED: Final = 4
SALT: Final = b"nahbar eid bench"


class Clock:
    """The system clock moved to a chosen time: the runtime gives the index time.time, so this costs alike."""

    def __init__(self, now: datetime) -> None:
        self.offset = now.timestamp() - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _subscriber(number: int) -> Keyed:
    drawn = hashlib.blake2b(number.to_bytes(4, "big"), digest_size=32, salt=SALT).digest()
    return Keyed(uuid.UUID(bytes=drawn[16:], version=4), drawn[:16], K)


def _subscribers() -> Iterator[Keyed]:
    for number in range(SUBSCRIBERS):
        yield _subscriber(number)


def _start() -> datetime:
    """Two windows before a temporary-key epoch ends, so the first measured rotation crosses into the next."""
    epoch_end = ((1_800_000_000 >> 16) + 1) << 16
    return datetime.fromtimestamp(window_start(epoch_end - 2 * (1 << K), K), UTC)


def _lookups(index: EidIndex, clock: Clock) -> dict[str, float]:
    now = int(clock())
    draw = random.Random(SEED)
    known = [_subscriber(draw.randrange(SUBSCRIBERS)) for _ in range(LOOKUPS // 2)]
    hits = [eid(s.identity_key, now, K) for s in known]
    misses = [draw.randbytes(8) for _ in range(LOOKUPS // 2)]
    assert all(index.resolve(b) == s.subscriber_id for b, s in zip(hits, known, strict=True))
    assert sum(index.resolve(b) is not None for b in misses) == 0
    resolve = index.resolve
    timings: dict[str, list[float]] = {"hit": [], "miss": [], "loop": []}
    for _ in range(LOOKUP_ROUNDS):
        for name, batch in (("hit", hits), ("miss", misses)):
            started = time.perf_counter()
            for broadcast in batch:
                resolve(broadcast)
            timings[name].append((time.perf_counter() - started) / len(batch))
        started = time.perf_counter()
        for broadcast in hits:
            len(broadcast)
        timings["loop"].append((time.perf_counter() - started) / len(hits))
    medians = {f"lookup_{name}_us": statistics.median(values) * 1e6 for name, values in timings.items()}
    return medians | {f"lookup_{name}_best_us": min(values) * 1e6 for name, values in timings.items()}


def measure() -> dict[str, object]:
    """Load, rotate, look up, opt in and withdraw; every figure the report prints."""
    started = time.perf_counter()
    for _ in _subscribers():
        pass
    making_s = time.perf_counter() - started
    gc.collect()
    clock = Clock(_start())
    before = rss_kib()
    index = EidIndex(_subscribers, clock=clock)
    started = time.perf_counter()
    loaded = index.load()
    load_s = time.perf_counter() - started
    gc.collect()
    after_load = rss_kib()
    peak_after_load = peak_kib()
    load_stats = (index.stats.eids, index.stats.temporary_keys)

    rotations = []
    for _ in range(ROTATIONS):
        clock.advance(1 << K)
        eids, tks = index.stats.eids, index.stats.temporary_keys
        started = time.perf_counter()
        assert index.rotate_if_due()
        rotations.append(
            {
                "seconds": time.perf_counter() - started,
                "eids": index.stats.eids - eids,
                "temporary_keys": index.stats.temporary_keys - tks,
                "window_start": window_start(int(clock()), K),
            }
        )
    not_due = time.perf_counter()
    assert not index.rotate_if_due()
    not_due_s = time.perf_counter() - not_due
    gc.collect()
    after_rotations = rss_kib()

    lookups = _lookups(index, clock)

    newcomer = Keyed(uuid.uuid4(), bytes(range(16)), K)
    started = time.perf_counter()
    index.add(newcomer)
    add_s = time.perf_counter() - started
    assert index.resolve(eid(newcomer.identity_key, int(clock()), K)) == newcomer.subscriber_id
    leaver = _subscriber(SUBSCRIBERS // 2)
    started = time.perf_counter()
    index.remove(leaver.subscriber_id)
    remove_s = time.perf_counter() - started
    assert index.resolve(eid(leaver.identity_key, int(clock()), K)) is None

    return {
        "subscribers": loaded,
        "k": K,
        "start": _start().isoformat(),
        "load_s": load_s,
        "making_subscribers_s": making_s,
        "load_eids": load_stats[0],
        "load_temporary_keys": load_stats[1],
        "rotations": rotations,
        "not_due_us": not_due_s * 1e6,
        "rss_before_kib": before,
        "rss_after_load_kib": after_load,
        "rss_after_rotations_kib": after_rotations,
        "peak_after_load_kib": peak_after_load,
        "peak_kib": peak_kib(),
        "add_ms": add_s * 1e3,
        "remove_ms": remove_s * 1e3,
        "lookups": LOOKUPS,
        "lookup_rounds": LOOKUP_ROUNDS,
        **lookups,
        "modules": len(sys.modules),
    }


def main(argv: list[str]) -> None:
    """Print the figures as JSON."""
    if argv:
        raise SystemExit("usage: python -m bench.eid_table")
    print(json.dumps(measure()))


if __name__ == "__main__":
    main(sys.argv[1:])
