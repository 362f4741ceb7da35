"""Who uses the CPU during a load run, sampled once a second with psutil: the server's workers (the children
of the `nahbar serve` process), PostgreSQL (the backends of the run's database and the server's own
background processes; backends of other databases are left out), this load generator, and the machine."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

import psutil

INTERVAL_S: Final = 1.0
# PostgreSQL's own processes, whatever database they serve (their cmdline has no database name).
_PG_AUXILIARY: Final = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum",
    "logical replication",
    "stats collector",
)


@dataclass(slots=True)
class Sample:
    at: float  # time.time()
    workers: float  # CPU seconds per second (1.0: one core busy)
    postgres: float
    generator: float
    machine: float  # all cores together, in cores
    worker_rss_mb: float


@dataclass
class CpuSampler:
    server_pid: int
    database: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _last: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._me = psutil.Process()

    def start(self) -> None:
        psutil.cpu_percent(None)
        self._measure()  # the baseline of every process's counters
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start < s.at <= end]

    def _run(self) -> None:
        previous = time.monotonic()
        while not self._stop.wait(INTERVAL_S):
            now = time.monotonic()
            workers, postgres, generator, rss = self._measure()
            elapsed = now - previous
            previous = now
            machine = psutil.cpu_percent(None) / 100 * (psutil.cpu_count() or 1)
            self.samples.append(
                Sample(time.time(), workers / elapsed, postgres / elapsed, generator / elapsed, machine, rss)
            )

    def _delta(self, pid: int, total: float) -> float:
        before = self._last.get(pid)
        self._last[pid] = total
        return 0.0 if before is None else max(0.0, total - before)

    def _measure(self) -> tuple[float, float, float, float]:
        workers = postgres = rss = 0.0
        try:
            children = psutil.Process(self.server_pid).children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                times = child.cpu_times()
                rss += child.memory_info().rss / 1e6
            except psutil.Error:
                continue
            workers += self._delta(child.pid, times.user + times.system)
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] != "postgres":
                continue
            command = " ".join(process.info["cmdline"] or [])
            if f" {self.database} " not in command and not any(a in command for a in _PG_AUXILIARY):
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            postgres += self._delta(process.pid, times.user + times.system)
        mine = self._me.cpu_times()
        generator = self._delta(self._me.pid, mine.user + mine.system)
        return workers, postgres, generator, rss
