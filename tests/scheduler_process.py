"""A process that runs only the scheduler, with one leader-only job that writes down when each of its runs
starts and ends (for tests of the leader election): `python -m tests.scheduler_process URL RUNS_FILE`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from server.core.config import Settings
from server.core.jobs import Job
from server.runtime import Runtime
from server.scheduler import start_scheduler
from tests.conftest import TEST_SECRET

EVERY_S = 0.2
RUN_S = 0.1  # each run lasts this long: long enough that two at once would overlap


def _recorder(runs: Path):
    def run(_runtime: Runtime) -> None:
        pid = os.getpid()
        with runs.open("a") as out:
            out.write(f"start {pid} {time.time():.6f}\n")
        time.sleep(RUN_S)
        with runs.open("a") as out:
            out.write(f"end {pid} {time.time():.6f}\n")

    return run


def main() -> None:
    url, runs = sys.argv[1], Path(sys.argv[2])
    runtime = Runtime.build(Settings(environment="test", database_url=url, secret_key=TEST_SECRET))
    scheduler = start_scheduler(runtime, jobs=[Job("recorded", _recorder(runs), every_s=EVERY_S)])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stdout.write("scheduler started\n")
    sys.stdout.flush()
    stop.wait()
    scheduler.shutdown(wait=True)
    runtime.close()


if __name__ == "__main__":
    main()
