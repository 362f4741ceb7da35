"""The server's Prometheus metrics, counted where things happen, served by `/metrics` (server/api/metrics.py).

With several worker processes, prometheus-client's multiprocess mode keeps each process's values in files in
`PROMETHEUS_MULTIPROC_DIR` (`nahbar serve` sets and cleans it) and `/metrics` adds them up, so the answer is
the same whichever worker gives it. No label value names a person, a token, an EID or an address: labels are
route templates, reason codes, provider names, job names and outcomes, each from a fixed set.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets (seconds): the live path answers in milliseconds; the tail up to the 5 s queue limit.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS_RECEIVED = Counter(
    "nahbar_events_received",
    "Sightings received: gateways' events (source=gateway) and iOS phones' own (source=phone).",
    ["source"],
)
EVENTS = Counter(
    "nahbar_events",
    "What became of the sightings received: accepted (stored, or dropped as nobody's), duplicate, rejected.",
    ["source", "result"],
)
EID_RESOLUTIONS = Counter(
    "nahbar_eid_resolutions",
    "Gateway events' EIDs looked up in this worker's index: hit (an opted-in phone) or miss (dropped).",
    ["result"],
)
DECISIONS = Counter(
    "nahbar_decisions",
    "Prompt decisions taken on the live path, by outcome and reason code.",
    ["outcome", "reason"],
)
DELIVERIES = Counter(
    "nahbar_deliveries",
    "Push attempts by provider and outcome (sent, retry, gone, failed; expired or not_sent: never pushed).",
    ["provider", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "nahbar_http_request_duration_seconds",
    "HTTP requests by method, route template (never the raw path) and status, and how long they took.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
JOB_RUNS = Counter(
    "nahbar_scheduler_job_runs",
    "Background job runs by job and result (ok, failed).",
    ["job", "result"],
)
JOB_SECONDS = Histogram(
    "nahbar_scheduler_job_duration_seconds",
    "How long background job runs took.",
    ["job"],
    buckets=(0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0),
)
# One process in the deployment should say 1. livesum: a process that ended no longer counts (its file is
# removed at the next scrape, server/api/metrics.py).
SCHEDULER_LEADER = Gauge(
    "nahbar_scheduler_leader",
    "1 in the process that runs the leader-only background jobs (summed over this server's workers).",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "nahbar_rate_limited",
    "Requests refused with 429 by a rate limit (optin, sightings, pairing) or the login lockout (login).",
    ["limit"],
)
OPT_IN_NOTICES = Counter(
    "nahbar_opt_in_notices",
    "Opt-ins this worker learnt of from another worker's notice (PostgreSQL LISTEN/NOTIFY).",
    ["result"],
)
