"""Background jobs (EID rotation, retention purge, ...) on one APScheduler per process, made in the lifespan.

Each domain lists its jobs in its own `tasks.py` as `JOBS` (of `server.core.jobs.Job`); this module, above the
domains, only collects and schedules them. Every process runs the scheduler, but a job runs only in the
process that holds the deployment's leader lock (server/core/leader.py), unless the job is marked
`every_process` (each worker's own EID tables). When the leader dies another process takes over within
`CLAIM_EVERY_S` (5 s) of the lock's release.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from server.alerts.tasks import JOBS as alert_jobs
from server.core import metrics
from server.core.jobs import Job
from server.core.leader import CLAIM_EVERY_S, Leadership, leadership_for
from server.core.migrate import SchemaWait
from server.delivery.tasks import JOBS as delivery_jobs
from server.impact.tasks import JOBS as impact_jobs
from server.limits.tasks import JOBS as limits_jobs
from server.presence.tasks import JOBS as presence_jobs
from server.retention.tasks import JOBS as retention_jobs
from server.runtime import Runtime
from server.webhooks.tasks import JOBS as webhook_jobs

__all__ = ["Job", "Scheduler", "start_scheduler"]

log = logging.getLogger("nahbar.scheduler")


def _all_jobs() -> list[Job]:
    return [
        *presence_jobs,
        *retention_jobs,
        *delivery_jobs,
        *impact_jobs,
        *webhook_jobs,
        *limits_jobs,
        *alert_jobs,
    ]


def _guarded(job: Job, runtime: Runtime, leadership: Leadership | None) -> Callable[[], None]:
    """The job as APScheduler runs it: only in the leader (unless `leadership` is None), never raising."""
    schema = SchemaWait(runtime.sessions, log, f"job {job.name}")

    def run() -> None:
        if leadership is not None and not leadership.held():
            return  # another process leads: it runs this job
        started = time.perf_counter()
        try:
            job.run(runtime)
        except Exception:  # a failing job must not kill the scheduler; the next run tries again
            metrics.JOB_RUNS.labels(job.name, "failed").inc()
            if not schema.explains_failure():
                log.exception("job %s failed", job.name)
        else:
            metrics.JOB_RUNS.labels(job.name, "ok").inc()
            schema.succeeded()
        finally:
            metrics.JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)

    return run


class Scheduler:
    """The process's APScheduler and its part in the leader election."""

    def __init__(self, scheduler: BackgroundScheduler, leadership: Leadership) -> None:
        self.scheduler = scheduler
        self.leadership = leadership

    def shutdown(self, wait: bool = True) -> None:
        """Stop the jobs, then let the lock go, so that another process may lead at once."""
        self.scheduler.shutdown(wait=wait)
        self.leadership.close()
        metrics.SCHEDULER_LEADER.set(0)


def start_scheduler(
    runtime: Runtime, jobs: list[Job] | None = None, leadership: Leadership | None = None
) -> Scheduler:
    """Start the process's scheduler with every job; `runtime.close()` does not stop it, the caller does."""
    leadership = leadership_for(runtime.settings.database_url) if leadership is None else leadership
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    now = datetime.now(UTC)
    for job in _all_jobs() if jobs is None else jobs:
        # One job each; `at_start` only moves its first run to now. (A separate one-off job could be
        # removed by a quick shutdown while APScheduler still looked it up: JobLookupError.)
        first = {"next_run_time": now} if job.at_start else {}
        scheduler.add_job(
            _guarded(job, runtime, None if job.every_process else leadership),
            "interval",
            seconds=job.every_s,
            id=job.name,
            name=job.name,
            **first,
        )

    def claim() -> None:
        # Whether or not a leader-only job is due: a follower takes over within CLAIM_EVERY_S of the lock's
        # release, and the leader notices a broken connection as soon.
        metrics.SCHEDULER_LEADER.set(1 if leadership.held() else 0)

    scheduler.add_job(claim, "interval", seconds=CLAIM_EVERY_S, id="leader-claim", next_run_time=now)
    scheduler.start()
    return Scheduler(scheduler, leadership)
