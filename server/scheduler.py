"""Background jobs (EID rotation, retention purge, ...) on one APScheduler per process, made in the lifespan.

Each domain lists its jobs in its own `tasks.py` as `JOBS` (of `server.core.jobs.Job`); this module, above the
domains, only collects and schedules them.
Every job must be safe to run in several workers at once (idempotent), until leader election arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from server.alerts.tasks import JOBS as alert_jobs
from server.core.jobs import Job
from server.core.migrate import SchemaWait
from server.delivery.tasks import JOBS as delivery_jobs
from server.presence.tasks import JOBS as presence_jobs
from server.retention.tasks import JOBS as retention_jobs
from server.runtime import Runtime

__all__ = ["Job", "start_scheduler"]

log = logging.getLogger("nahbar.scheduler")


def _all_jobs() -> list[Job]:
    return [*presence_jobs, *retention_jobs, *delivery_jobs, *alert_jobs]


def _guarded(job: Job, runtime: Runtime) -> Callable[[], None]:
    schema = SchemaWait(runtime.sessions, log, f"job {job.name}")

    def run() -> None:
        try:
            job.run(runtime)
        except Exception:  # a failing job must not kill the scheduler; the next run tries again
            if not schema.explains_failure():
                log.exception("job %s failed", job.name)
        else:
            schema.succeeded()

    return run


def start_scheduler(runtime: Runtime, jobs: list[Job] | None = None) -> BackgroundScheduler:
    """Start the process's scheduler with every job; `runtime.close()` does not stop it, the caller does."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for job in _all_jobs() if jobs is None else jobs:
        # One job each; `at_start` only moves its first run to now. (A separate one-off job could be
        # removed by a quick shutdown while APScheduler still looked it up: JobLookupError.)
        first = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
        scheduler.add_job(
            _guarded(job, runtime), "interval", seconds=job.every_s, id=job.name, name=job.name, **first
        )
    scheduler.start()
    return scheduler
