"""Resident memory of decode + track after 1,000,000 advertisements from 100,000 distinct identifiers.

Run in a fresh process (`python -m bench.agent_memory`), which imports only what the agent's decode and
track path imports, so the figure is the agent's and not the benchmark's: no benchmark helpers, no
`random`, no peer parser. The advertisements are made one at a time as they are fed (a prebuilt list of a
million would measure the list), every one an Eddystone-EID frame, the worst case for the tracker since
each is kept. Events are drained every simulated second, as the agent hands them to its outbox.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Final

from beacon_agent.frames import EDDYSTONE_SERVICE_UUID, decode
from beacon_agent.tracker import Tracker, TrackerConfig

ADVERTISEMENTS: Final = 1_000_000
IDENTIFIERS: Final = 100_000
PER_SECOND: Final = 4_000  # advertisements per simulated second; the tracker ticks once a second
START: Final = 1_700_000_000.0  # wall-clock seconds, as the agent stamps events
_MASK: Final = (1 << 64) - 1


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_kib() -> int:
    """Resident set size now; the peak from getrusage where /proc is missing."""
    now = _status_kib("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_kib() -> int:
    peak = _status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(config: TrackerConfig) -> dict[str, object]:
    """Feed the advertisements and report memory, tracker size and counts."""
    before = rss_kib()
    tracker = Tracker(config)
    state = 12345  # a 64-bit LCG picks the phone and the reading: deterministic, no imports
    events = 0
    started = time.perf_counter()
    for second in range(ADVERTISEMENTS // PER_SECOND):
        for n in range(PER_SECOND):
            now = START + second + n / PER_SECOND  # a new float each time, as the agent's clock gives
            state = (state * 6364136223846793005 + 1442695040888963407) & _MASK
            phone = (state >> 33) % IDENTIFIERS
            eid = ((phone + 1) * 0x9E3779B97F4A7C15 & _MASK).to_bytes(8, "big")
            rssi = -100.0 + (state >> 20) % 50  # -100 .. -51 dBm: some enter, some never do
            frame = decode({}, {EDDYSTONE_SERVICE_UUID: b"\x30\xee" + eid})
            tracker.observe(frame, rssi, now)
        tracker.tick(START + second + 1)
        events += len(tracker.drain())
    elapsed = time.perf_counter() - started
    return {
        "advertisements": ADVERTISEMENTS,
        "identifiers": IDENTIFIERS,
        "per_second": PER_SECOND,
        "rss_before_kib": before,
        "rss_after_kib": rss_kib(),
        "peak_kib": peak_kib(),
        "tracked": len(tracker),
        "max_tracked": tracker.config.max_tracked,
        "evicted": tracker.stats.evicted,
        "kept": tracker.stats.kept,
        "events": events,
        "seconds": elapsed,
        "modules": len(sys.modules),
    }


def main(argv: list[str]) -> None:
    """Print the figures as JSON; `--hold-all` raises max_tracked and the silence timeout past 100,000."""
    if argv == ["--hold-all"]:
        # Not the agent's setting: shows what one tracked identifier costs, for anyone sizing max_tracked.
        config = TrackerConfig(max_tracked=IDENTIFIERS, exit_after_s=1e9)
    elif not argv:
        config = TrackerConfig()
    else:
        raise SystemExit("usage: python -m bench.agent_memory [--hold-all]")
    print(json.dumps(measure(config)))


if __name__ == "__main__":
    main(sys.argv[1:])
