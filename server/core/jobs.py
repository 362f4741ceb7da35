"""What a background job is. Each domain lists its jobs in its own `tasks.py` as `JOBS`; `server/scheduler.py`
collects and runs them. Defined down here so that the domains need nothing of the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Job:
    """A function of the process's runtime (`server.runtime.Runtime`, which sits above the domains), run
    every `every_s` seconds (and once at start when `at_start`).

    A job runs only in the scheduler's leader, one process for the whole deployment, unless `every_process`:
    for what each process keeps for itself (its own EID tables), which every process must do on its own."""

    name: str
    run: Callable[[Any], object]
    every_s: float
    at_start: bool = False
    every_process: bool = False
