"""/metrics: Prometheus's view of the server, for the operator only (bearer `NAHBAR_METRICS_TOKEN`).

Counters and histograms come from server/core/metrics.py; with several workers (`PROMETHEUS_MULTIPROC_DIR`
set, as `nahbar serve` does) every worker's values are read from their files and added up, so any worker's
answer covers them all. What lives in the database (outbox depth and age, gateways by health) is read at
scrape time. Not part of the OpenAPI document: it is not an API for clients, and its format is Prometheus's.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from server.api.deps import RuntimeDep
from server.core.errors import NotFound, Unauthorized
from server.core.serving import METRICS_FOLDER_ENV
from server.delivery import repository as deliveries
from server.runtime import Runtime
from server.sites.admin_service import fleet_health

router = APIRouter(include_in_schema=False)
log = logging.getLogger("nahbar.metrics")

_LIVE_FILE: Final = re.compile(r"^gauge_live\w*_(\d+)\.db$")


class DatabaseCollector(Collector):
    """What the database knows, read when Prometheus scrapes: the outbox and the fleet."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        now = self._runtime.clock()
        try:
            with self._runtime.sessions() as session:
                pending, oldest = deliveries.pending_summary(session)
                health = fleet_health(session, now)
        except SQLAlchemyError as exc:  # the rest of the metrics still tell what the workers see
            log.warning("metrics: the database did not answer", extra={"error": type(exc).__name__})
            return
        depth = GaugeMetricFamily("nahbar_outbox_pending", "Deliveries waiting to be pushed (pending).")
        depth.add_metric([], pending)
        yield depth
        age = GaugeMetricFamily(
            "nahbar_outbox_oldest_age_seconds", "How long the oldest pending delivery has waited (0: none)."
        )
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        yield age
        fleet = GaugeMetricFamily("nahbar_gateways", "The platform's gateways by health.", labels=["health"])
        for state, count in sorted(health.items()):
            fleet.add_metric([state], count)
        yield fleet


class _ThisProcess(Collector):
    """The default registry's metrics (this process's, when there is one process)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def _forget_ended_workers(folder: Path) -> None:
    """Drop the live gauges of worker processes that ended (a restarted or killed worker), so that a gauge
    such as the scheduler leader counts the living only. Counters stay: their totals keep counting."""
    for path in folder.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, someone else's


def exposition(runtime: Runtime) -> bytes:
    """Every metric in Prometheus's text format."""
    registry = CollectorRegistry()
    folder = os.environ.get(METRICS_FOLDER_ENV)
    if folder:
        _forget_ended_workers(Path(folder))
        multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector(runtime))
    return generate_latest(registry)


def _authorised(request: Request, runtime: Runtime) -> None:
    token = runtime.settings.metrics_token
    if token is None:
        raise NotFound(
            "Metrics are off on this server; the operator sets NAHBAR_METRICS_TOKEN to serve them."
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthorized("Send the metrics token as 'Authorization: Bearer <NAHBAR_METRICS_TOKEN>'.")


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics (text format), for the bearer of the metrics token."""
    _authorised(request, runtime)
    body = await run_in_threadpool(exposition, runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
