"""Abuse limits for the phone API: token buckets per client address (opt-in) and per device (sightings,
test-device pairing).

The buckets are counted where `NAHBAR_RATE_LIMIT_STORE` says (server/limits/buckets.py): by default in the
database on PostgreSQL, so the limits hold for all workers and machines together, in Redis where
`NAHBAR_REDIS_URL` is set, and in this process's memory on SQLite (one process; with several workers each
keeps its own, so a caller may get up to workers x limit through). In memory, buckets that have refilled
completely carry no information and are dropped, and beyond `max_keys` the least recently used bucket goes.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Final

from fastapi import Depends, Request

from server.api.client import client_address
from server.api.deps import CurrentDevice, RuntimeDep
from server.core import metrics
from server.core.errors import NahbarError
from server.limits.buckets import TokenBucketLimiter
from server.runtime import Runtime

__all__ = [
    "OptInRateLimit",
    "PairingRateLimit",
    "RateLimited",
    "TokenBucketLimiter",
    "limit_by_client",
    "limit_sightings",
]


class RateLimited(NahbarError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(
            detail, extra={"retry_after_s": retry_after_s}, headers={"Retry-After": str(retry_after_s)}
        )
        self.retry_after_s = retry_after_s


def _take(runtime: Runtime, name: str, capacity: int, period_s: float, key: str, message: str) -> None:
    wait = runtime.buckets.take(name, key, capacity, period_s)
    if wait > 0:
        metrics.RATE_LIMITED.labels(name).inc()
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"{message} Retry after {retry_after} s (the Retry-After header says so too).", retry_after
        )


def limit_optin(request: Request, runtime: RuntimeDep) -> None:
    """At most `optin_per_hour_per_client` opt-ins an hour from one client address."""
    settings = runtime.settings
    per_hour = settings.optin_per_hour_per_client
    _take(
        runtime,
        "optin",
        per_hour,
        3600,
        client_address(request, settings.trusted_proxies),
        f"Too many opt-ins from this address: at most {per_hour} an hour. An app opts in once per "
        "install and keeps its device token.",
    )


def limit_sightings(request: Request, runtime: Runtime, subscriber_id: uuid.UUID) -> None:
    """At most `sightings_per_minute_per_device` sightings a minute from one device."""
    per_minute = runtime.settings.sightings_per_minute_per_device
    _take(
        runtime,
        "sightings",
        per_minute,
        60,
        str(subscriber_id),
        f"Too many sightings from this device: at most {per_minute} a minute. Report region transitions "
        "(enter, exit) and a dwell every few minutes, not every ranging callback.",
    )


def limit_by_client(
    request: Request, runtime: Runtime, name: str, capacity: int, period_s: float, message: str
) -> None:
    """At most `capacity` requests per `period_s` from one client address, for public endpoints."""
    _take(
        runtime, name, capacity, period_s, client_address(request, runtime.settings.trusted_proxies), message
    )


PAIRING_ATTEMPTS_PER_HOUR: Final = 10


def limit_pairing(request: Request, runtime: RuntimeDep, subscriber: CurrentDevice) -> None:
    """At most ten test-device pairing attempts an hour from one device: a pairing code has 60 bits, and
    guessing stays out of reach even for a device that tries all day."""
    _take(
        runtime,
        "pairing",
        PAIRING_ATTEMPTS_PER_HOUR,
        3600,
        str(subscriber.id),
        f"Too many pairing attempts from this device: at most {PAIRING_ATTEMPTS_PER_HOUR} an hour. "
        "Ask the charity's editor for a new code and type it carefully.",
    )


OptInRateLimit = Annotated[None, Depends(limit_optin)]
PairingRateLimit = Annotated[None, Depends(limit_pairing)]
