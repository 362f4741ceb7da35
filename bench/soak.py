"""Soak (issue 20/7): the server and the gateway agent run together for half an hour; does their memory stay
flat? `python -m bench soak [--minutes 30] [--database sqlite|postgres] [--every 60]`.

One `nahbar serve` (one worker) on a database made for the run, with PHONES opted-in subscribers seeded as
the load benchmark seeds them and one enrolled gateway; the gateway is `python -m bench.soak_agent`, the real
`Agent` fed by a simulated street with churn (bench/soak_agent.py). This process samples the resident memory
(psutil, RSS) of the server's processes and of the agent's every `--every` seconds, and fits a line through
the samples after the warm-up: a slope within FLAT_MB_PER_HOUR for both is the verdict "flat".
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import psutil

from bench import report
from bench.delivery import database
from bench.load_world import seed, server
from bench.serving import end

PHONES: Final = 2_000
FLAT_MB_PER_HOUR: Final = 10.0  # growth after the warm-up that still counts as flat
WARMUP_S: Final = 300.0  # at most; a third of a shorter run
ROOT: Final = Path(__file__).resolve().parent.parent


def _rss_mb(pid: int) -> float:
    """Resident memory of the process and its children (uvicorn's workers, if any), MB."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
    except psutil.Error:
        return float("nan")
    return total / 1e6


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB an hour."""
    if len(samples) < 2:
        return float("nan")
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return float("nan")
    return sum((t - mean_t) * (m - mean_m) for t, m in samples) / var * 3600


def measure(minutes: float, every_s: float, kind: str) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="nahbar-soak-"))
    with ExitStack() as stack:
        url = stack.enter_context(database(kind))
        world = seed(url, gateways=1, subscribers=PHONES, charities=1, mobile=0, k=10)
        base, server_pid = stack.enter_context(server(url, 1, folder / "server.log"))
        state = folder / "gateway"
        state.mkdir()
        (state / "token").write_text(world.gateways[0].token)
        keys = folder / "keys.txt"
        keys.write_text("\n".join(p.identity_key.hex() for p in world.people))
        with (folder / "agent.log").open("ab") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "bench.soak_agent", base, str(state), str(keys)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        stack.callback(end, agent)
        began = time.monotonic()
        samples: list[dict[str, float]] = []
        duration = minutes * 60
        while True:
            at = time.monotonic() - began
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited: {(folder / 'agent.log').read_text()[-2000:]}")
            samples.append({"s": at, "server_mb": _rss_mb(server_pid), "agent_mb": _rss_mb(agent.pid)})
            print(
                f"  {at / 60:5.1f} min: server {samples[-1]['server_mb']:.1f} MB, "
                f"agent {samples[-1]['agent_mb']:.1f} MB",
                flush=True,
            )
            if at >= duration - 1e-6:
                break
            time.sleep(max(0.0, min(every_s, duration - at)))
        counts = _counts(url)
        agent_warnings = [
            line
            for line in (folder / "agent.log").read_text(errors="replace").splitlines()
            if line.startswith(("WARNING", "ERROR", "Traceback"))
        ]
    warmup = min(WARMUP_S, duration / 3)
    after = [s for s in samples if s["s"] >= warmup]
    figures: dict[str, Any] = {
        "minutes": minutes,
        "every_s": every_s,
        "database": kind,
        "phones": PHONES,
        "warmup_s": warmup,
        "samples": samples,
        "counts": counts,
        "agent_warnings": agent_warnings[:10],
    }
    for part in ("server", "agent"):
        figures[f"{part}_slope"] = slope_mb_per_hour([(s["s"], s[f"{part}_mb"]) for s in after])
        figures[f"{part}_growth"] = (
            after[-1][f"{part}_mb"] - after[0][f"{part}_mb"] if after else float("nan")
        )
    return figures


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        counts = {
            "events": connection.execute(text("SELECT count(*) FROM proximity_events")).scalar_one(),
            "visits": connection.execute(text("SELECT count(*) FROM visits")).scalar_one(),
            "decisions": connection.execute(text("SELECT count(*) FROM prompt_decisions")).scalar_one(),
        }
    engine.dispose()
    return {k: int(v) for k, v in counts.items()}


def _flat(slope: float) -> bool:
    return abs(slope) <= FLAT_MB_PER_HOUR


def _section(f: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {s['s'] / 60:.1f} | {s['server_mb']:.1f} | {s['agent_mb']:.1f} |" for s in f["samples"]
    )
    c = f["counts"]
    verdict = {part: "flat" if _flat(f[f"{part}_slope"]) else "GROWING" for part in ("server", "agent")}
    minutes = f"{f['minutes']:g}"
    warnings = (
        "Agent warnings: " + "; ".join(f["agent_warnings"])
        if f["agent_warnings"]
        else "The agent logged no warning."
    )
    return f"""
## Soak: server and agent together (issue 20/7)

Run on {report.today()} on {report.machine()}. Command: `.venv/bin/python -m bench soak --minutes {minutes}
--database {f["database"]}` (default 30 minutes on SQLite; `--minutes 2` for trying).

One `nahbar serve` (one worker) on a {f["database"]} database made for the run, {f["phones"]:,} opted-in
subscribers and one enrolled gateway; the gateway is beacon_agent's `Agent` in a process of its own
(`bench/soak_agent.py`), fed by a simulated street instead of BlueZ: about one person every two seconds
walks past (a fifth stop at the door), seven in ten with an opted-in phone and the rest with a key the server
never saw, each advertising its current EID five times a second; and the window hears 100 foreign
advertisements a second from devices with ever new data (address churn), which the agent drops. Resident
memory (RSS, psutil; MB are 10^6 bytes) of the server's process and of the agent's, every
{f["every_s"]:g} s. The slope is a least-squares line through the samples after a warm-up of
{f["warmup_s"] / 60:g} min; "flat" means within {FLAT_MB_PER_HOUR:g} MB an hour.

| minute | server MB | agent MB |
| ---: | ---: | ---: |
{rows}

| | server | agent |
| --- | ---: | ---: |
| **slope after the warm-up** | **{f["server_slope"]:+.1f} MB/hour** | **{f["agent_slope"]:+.1f} MB/hour** |
| growth after the warm-up | {f["server_growth"]:+.1f} MB | {f["agent_growth"]:+.1f} MB |
| **verdict** | **{verdict["server"]}** | **{verdict["agent"]}** |

What the run did: {c["events"]:,} proximity events stored, {c["visits"]:,} visits, {c["decisions"]:,}
decisions. {warnings}
A short run says little about the slope (a few MB of allocator noise over two minutes is tens of MB an
hour); the verdict is meant for the 30-minute run.
"""


def run(minutes: float, every_s: float, kind: str) -> bool:
    print(f"soak: server and agent for {minutes:g} min on {kind}, RSS every {every_s:g} s ...", flush=True)
    figures = measure(minutes, every_s, kind)
    flat = _flat(figures["server_slope"]) and _flat(figures["agent_slope"])
    print(
        f"  slope after the warm-up: server {figures['server_slope']:+.1f} MB/hour, agent "
        f"{figures['agent_slope']:+.1f} MB/hour ({'flat' if flat else 'GROWING'}); "
        f"{figures['counts']['events']:,} events stored",
        flush=True,
    )
    report.write_section("soak", _section(figures))
    return flat


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))  # through the cleanups
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between memory samples")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    return 0 if run(args.minutes, args.every, args.database) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
