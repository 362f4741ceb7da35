"""`python -m bench [agent eid policy delivery moment]`: run the benchmarks (all by default), print a summary,
write their sections of the doc. The long ones run only by name, with their own options:
`python -m bench load [--quick]` and `python -m bench soak [--minutes N]`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from bench import report
from bench.agent_dense import run as agent_dense
from bench.agent_throughput import Throughput, measure
from bench.delivery import run as delivery
from bench.mix import FOREIGN_PARTS, PARTS
from bench.moment_report import run as moment
from bench.opt_in_propagation import run as opt_in_propagation
from bench.policy import run as policy

EID_ROTATION_TARGET_S: Final = 5.0  # one rotation of the EID table for 1,000,000 subscribers (issue 4)
EID_MEMORY_TARGET_MB: Final = 250.0  # resident for that table
EID_LOOKUP_TARGET_US: Final = 2.0  # one resolve
THROUGHPUT_TARGET: Final = 250_000  # advertisements per second through decode + track (issue 3)
MEMORY_TARGET_MB: Final = 60.0  # resident memory after 1,000,000 advertisements (issue 3)
ROOT: Final = Path(__file__).resolve().parent.parent


def _fresh(module: str, *args: str) -> dict[str, Any]:
    """A benchmark module's JSON figures, from a fresh process that imports only what it measures."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def _memory(*args: str) -> dict[str, float]:
    return _fresh("bench.agent_memory", *args)


def _mb(kib: float) -> float:
    return kib * 1024 / 1e6


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def agent() -> bool:
    """The agent's decode + track benchmarks; True when both targets are met."""
    print("agent: decode + track throughput (one core) ...", flush=True)
    result = measure()
    print("agent: memory after 1,000,000 advertisements (fresh processes) ...", flush=True)
    memory = _memory()
    hold_all = _memory("--hold-all")
    ratio = result.agent.median / result.peer.median
    peak_mb = _mb(memory["peak_kib"])
    throughput_ok = result.agent.median >= THROUGHPUT_TARGET
    memory_ok = peak_mb <= MEMORY_TARGET_MB
    summary = [
        f"decode + track : best {_rate(result.agent.best)}, median {_rate(result.agent.median)}"
        f" (target {_rate(THROUGHPUT_TARGET)}: {'met' if throughput_ok else 'MISSED'})",
        f"decode only    : best {_rate(result.decode_only.best)}, median {_rate(result.decode_only.median)}",
        f"{result.peer_name}: best {_rate(result.peer.best)}, median {_rate(result.peer.median)}",
        f"ratio (decode + track / peer decode, medians): {ratio:.1f}x",
        f"memory peak    : {peak_mb:.1f} MB (target {MEMORY_TARGET_MB:.0f} MB: "
        f"{'met' if memory_ok else 'MISSED'}), {memory['tracked']:,} tracked, "
        f"{memory['evicted']:,} evicted",
    ]
    print("\n".join("  " + line for line in summary))
    report.write_section("agent", _agent_section(result, memory, hold_all, ratio))
    print(f"wrote the agent section of {report.DOC.relative_to(ROOT)}")
    return throughput_ok and memory_ok


def _agent_section(
    result: Throughput, memory: dict[str, float], hold_all: dict[str, float], ratio: float
) -> str:
    total = sum(result.mix)
    mix_rows = "\n".join(
        f"| {name} | {'foreign' if index < FOREIGN_PARTS else 'kept'} | {count:,} | {count / total:.1%} |"
        for index, ((name, _share), count) in enumerate(zip(PARTS, result.mix, strict=True))
    )
    ours = ", ".join(f"{name} {count:,}" for name, count in result.decoded.items())
    peers = ", ".join(f"{name} {count:,}" for name, count in result.peer_decoded.items())
    growth = memory["rss_after_kib"] - memory["rss_before_kib"]
    per_track = (hold_all["rss_after_kib"] - hold_all["rss_before_kib"]) * 1024 / hold_all["tracked"]
    pinned = f"pinned to CPU {result.cpu}" if result.cpu is not None else "not pinned (no sched_setaffinity)"
    return f"""
## Agent: decode + track (issue 3)

Run on {report.today()} on {report.machine()}. Command: `make bench` (`.venv/bin/python -m bench`).

### The advertisement mix

{result.count:,} advertisements built by `bench/mix.py` (seeded, so every run sees the same traffic) before
anything is timed, in random order, each stamped {1 / result.per_second * 1000:g} ms after the one before
({result.per_second:,} a second). Phones are 1,000 distinct Eddystone-EIDs, each at its own distance (a mean
RSSI between -100 and -55 dBm, 4 dB noise), so some enter and dwell and most pass by. The site's own beacons
are 6 iBeacons and 4 Eddystone-UIDs, all in `Tracker(watched=...)`.

| part | | advertisements | share |
| --- | --- | ---: | ---: |
{mix_rows}

### Throughput, one core

One process {pinned}; garbage collection on, as in the agent. {len(result.agent.runs)} interleaved rounds of
the three measurements over the whole list; best and median of the rounds.

| what is timed | best | median | target |
| --- | ---: | ---: | ---: |
| **agent: `decode` + `Tracker.observe`, `tick` + `drain` every simulated second** | \
{_rate(result.agent.best)} | {_rate(result.agent.median)} | {_rate(THROUGHPUT_TARGET)} |
| agent: `decode` alone | {_rate(result.decode_only.best)} | {_rate(result.decode_only.median)} | |
| peer: {result.peer_name}, decode alone | {_rate(result.peer.best)} | {_rate(result.peer.median)} | |

**Ratio: decode + track runs {ratio:.1f}x the peer's decode-only rate** (medians; best: \
{result.agent.best / result.peer.best:.1f}x). Decode alone against decode alone: \
{result.decode_only.median / result.peer.median:.1f}x.

What each side does with one advertisement:

- **agent**: gets it as bleak's `AdvertisementData` fields give it (manufacturer data by company id, service
  data by 128-bit UUID; BlueZ has already split the AD structures), `decode` returns a frame or None, and
  the tracker drops it (counted) or keeps it: a Kalman step, the presence state machine, events. Once per
  simulated second `tick` ages the presences and `drain` hands the events over, as the agent's tick loop
  does. Of the mix the tracker kept {result.kept:,} and dropped {result.dropped:,}, emitting {result.events:,}
  events. Frames decoded: {ours}.
- **peer**: `beacontools.parse_packet` gets the raw AD structures of the same advertisement (flags where the
  device sends them, the 16-bit service UUID list and service data for Eddystone, manufacturer-specific
  data) and parses them with `construct`; it returns a frame object or None. It does the AD splitting that
  BlueZ does for the agent, and no tracking. Frames it returned: {peers}. (It also decodes Exposure
  Notification service data, which the agent ignores, and iBeacons under any UUID.)
- beacontools is installed into the venv by `make bench` only; it is not a dependency of the project.

### Memory

`python -m bench.agent_memory` in a fresh process that imports only `beacon_agent.frames` and
`beacon_agent.tracker` (and the standard library they use; {memory["modules"]:.0f} modules). It decodes
and tracks {memory["advertisements"]:,.0f} advertisements from {memory["identifiers"]:,.0f} distinct
Eddystone-EIDs, made one at a time (a prebuilt list would be measured instead), every one of them kept, the
worst case for the tracker, with `tick` + `drain` every simulated second ({memory["per_second"]:,.0f}
advertisements). Resident memory from /proc/self/status (VmRSS, peak VmHWM); MB are 10^6 bytes.

| | default config (`max_tracked` {memory["max_tracked"]:,.0f}) |
| --- | ---: |
| resident after the imports | {_mb(memory["rss_before_kib"]):.1f} MB |
| resident after 1,000,000 advertisements | {_mb(memory["rss_after_kib"]):.1f} MB |
| **peak resident** (target {MEMORY_TARGET_MB:.0f} MB) | **{_mb(memory["peak_kib"]):.1f} MB** |
| growth over the imports | {_mb(growth):.1f} MB |
| identifiers tracked at the end / evicted | {memory["tracked"]:,.0f} / {memory["evicted"]:,.0f} |
| events emitted (and drained) | {memory["events"]:,.0f} |
| time taken | {memory["seconds"]:.1f} s |

The bound holds because the tracker never keeps more than `max_tracked` identifiers: a new one past the
bound evicts the least recently seen (`OrderedDict.popitem(last=False)`, O(1); a sighting is `move_to_end`,
O(1)); a presence that was reported ends with an `exit`, one whose `enter` is still waiting to be sent is
simply forgotten, and identifiers heard fewer than three times never become a track. For sizing
`max_tracked`: with it raised to 100,000 and no silence timeout, so that every identifier seen
({hold_all["tracked"]:,.0f}) is held at once, the process peaked at {_mb(hold_all["peak_kib"]):.1f} MB,
about {per_track:,.0f} bytes per tracked identifier.

### Notes

- On this shared machine the medians move by about 10 % between runs; the targets are met by far more.
- Not measured on a Raspberry Pi, where one core is several times slower than a server core; run
  `make bench` there to see its figures (the section records the machine).
- What was made faster for this: `decode` reads an Eddystone-EID (most of what is kept) without a further
  call, and iBeacon UUIDs and their text come from small bounded caches (256 each), since a site's beacons
  repeat a few UUIDs and building a `UUID` cost more than the rest of the decoding. The tracker dropped a
  per-identifier field it never read. Eviction was already O(1) and is unchanged.
"""


def eid_table() -> bool:
    """The server's EID table for 1,000,000 subscribers; True when all three targets are met."""
    print("eid: EID table for 1,000,000 subscribers (fresh process; about a minute) ...", flush=True)
    load_before = os.getloadavg()[0]
    figures = _fresh("bench.eid_table")
    figures["load_average"] = (load_before, os.getloadavg()[0])
    rotation_s = max(r["seconds"] for r in figures["rotations"])
    table_mb = _mb(figures["peak_kib"] - figures["rss_before_kib"])
    lookup_us = max(figures["lookup_hit_us"], figures["lookup_miss_us"])
    met = {
        "rotation": rotation_s <= EID_ROTATION_TARGET_S,
        "memory": table_mb <= EID_MEMORY_TARGET_MB,
        "lookup": lookup_us <= EID_LOOKUP_TARGET_US,
    }
    summary = [
        f"rotation (slowest of {len(figures['rotations'])}): {rotation_s:.2f} s "
        f"(target {EID_ROTATION_TARGET_S:g} s: {'met' if met['rotation'] else 'MISSED'})",
        f"table, peak resident over the imports: {table_mb:.0f} MB "
        f"(target {EID_MEMORY_TARGET_MB:g} MB: {'met' if met['memory'] else 'MISSED'})",
        f"lookup: hit {figures['lookup_hit_us']:.2f} us, miss {figures['lookup_miss_us']:.2f} us "
        f"(target {EID_LOOKUP_TARGET_US:g} us: {'met' if met['lookup'] else 'MISSED'})",
        f"load at start: {figures['load_s']:.1f} s",
    ]
    print("\n".join("  " + line for line in summary))
    report.write_section("eid", _eid_section(figures, rotation_s, table_mb))
    print(f"wrote the eid section of {report.DOC.relative_to(ROOT)}")
    return all(met.values())


def _eid_section(f: dict[str, Any], rotation_s: float, table_mb: float) -> str:
    rows = "\n".join(
        f"| {n} | {r['seconds']:.2f} s | {r['eids']:,} | {r['temporary_keys']:,} |"
        for n, r in enumerate(f["rotations"], start=1)
    )
    before = f["rss_before_kib"]
    return f"""
## EID table (issue 4)

Run on {report.today()} on {report.machine()}. Command: `make bench` (`.venv/bin/python -m bench`), or
this one alone: `.venv/bin/python -m bench eid`.

`python -m bench.eid_table` in a fresh process that imports only `server.presence.eid_index` and what it
imports ({f["modules"]} modules). {f["subscribers"]:,} subscribers, K = {f["k"]}, made one at a time as
`EidIndex.load` reads them (their keys from a seeded hash, so the benchmark can recompute their EIDs); the
clock starts two windows before a temporary-key epoch ends ({f["start"]}), so the first rotation measured
crosses into the next epoch. The clock is the system clock moved by an offset, as cheap to read as the
`time.time` the runtime gives the index. MB are 10^6 bytes; resident memory from /proc/self/status.

| target | measured | limit |
| --- | ---: | ---: |
| **one rotation** (slowest of {len(f["rotations"])}) | **{rotation_s:.2f} s** | {EID_ROTATION_TARGET_S:g} s |
| **table: peak resident over the imports** | **{table_mb:.0f} MB** | {EID_MEMORY_TARGET_MB:g} MB |
| **lookup, an EID being broadcast** (median of {f["lookup_rounds"]} rounds; best \
{f["lookup_hit_best_us"]:.2f} us) | **{f["lookup_hit_us"]:.2f} us** | {EID_LOOKUP_TARGET_US:g} us |
| **lookup, an unknown EID** (best {f["lookup_miss_best_us"]:.2f} us) | **{f["lookup_miss_us"]:.2f} us** | \
{EID_LOOKUP_TARGET_US:g} us |

| rotation | time | EIDs computed | temporary keys computed |
| --- | ---: | ---: | ---: |
{rows}

| memory | |
| --- | ---: |
| resident after the imports | {_mb(before):.1f} MB |
| after the load (three windows) | {_mb(f["rss_after_load_kib"]):.1f} MB \
(+{_mb(f["rss_after_load_kib"] - before):.0f} MB) |
| after the rotations | {_mb(f["rss_after_rotations_kib"]):.1f} MB \
(+{_mb(f["rss_after_rotations_kib"] - before):.0f} MB) |
| peak, while a rotation builds its table aside | {_mb(f["peak_kib"]):.1f} MB (+{table_mb:.0f} MB) |

Other figures: the load at start (reading {f["subscribers"]:,} keys, {f["load_eids"]:,} EIDs and
{f["load_temporary_keys"]:,} temporary keys) took {f["load_s"]:.1f} s, of which \
{f["making_subscribers_s"]:.1f} s was the benchmark making its subscribers (in the server: reading and
unsealing them from the database). `rotate_if_due` when nothing is due: {f["not_due_us"]:.0f} us. An
opt-in (`add`) at a million: {f["add_ms"]:.1f} ms. A withdrawal (`remove`, a linear search of the ids):
{f["remove_ms"]:.1f} ms. The lookup loop's own cost, included above: {f["lookup_loop_us"]:.2f} us.
{f["lookups"]:,} lookups a round, half of them EIDs being broadcast now by random subscribers, half random
8 bytes.

How: each window is an open-addressing hash table in two flat arrays (the EID as a 64-bit integer, and a
subscriber number), load factor at most one half; per subscriber the index keeps 16-byte rows in
bytearrays (id as two 64-bit halves, identity key, two cached temporary keys), never Python objects. A
dict of 3,000,000 `int -> int` would take about 300 MB in CPython on its own. A rotation builds only the
new next window (one AES block per subscriber: the OpenSSL context is made without the `Cipher` wrapper where
cryptography's binding allows, checked against the public path at import) into a table
aside and swaps it in; next epoch's temporary keys are computed a slice per rotation (1/64 of the
subscribers at K = 10), so no rotation pays two AES blocks per head. The rotation runs in the
`eid-rotation` job (every 5 s it checks whether a window turned), on one core, alongside the requests.

Notes: the figures move by 10-30 % on this shared machine between runs, more when other work runs on it:
with other test suites busy on both cores, trial runs measured rotations up to 5.4 s and hit lookups up
to 2.6 us; on a quiet machine 3.1 s and 1.5-1.7 us. Keep the machine otherwise idle (the load average is
one-minute average before and after this run: {f["load_average"][0]:.1f} and {f["load_average"][1]:.1f},
on {os.cpu_count()} cores). The
load at start is slower than a rotation (three windows and a set of temporary keys) and blocks the app's
startup until the index can answer.
"""


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default); exit 1 when a target was missed."""
    if argv and argv[0] in ("load", "soak"):  # minutes long, with options: never part of "all"
        from bench import load, soak

        return {"load": load.main, "soak": soak.main}[argv[0]](argv[1:])
    benchmarks = {
        "agent": agent,
        "agent-dense": agent_dense,
        "eid": eid_table,
        "policy": policy,
        "delivery": delivery,
        "moment": moment,
        "opt-in": opt_in_propagation,
    }
    names = argv or list(benchmarks)
    unknown = [name for name in names if name not in benchmarks]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(benchmarks)}", file=sys.stderr)
        return 2
    met = [benchmarks[name]() for name in names]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
