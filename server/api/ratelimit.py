"""Abuse limits for the phone API: token buckets per client address (opt-in) and per device (sightings).

The buckets live in this process's memory. With several workers each keeps its own buckets, so a client
may get up to (workers x limit) through; that stops runaway apps and casual scripts, which is the aim.
Exact limits across workers would need a shared store. Memory is bounded: buckets that have refilled
completely carry no information and are dropped, and beyond `max_keys` the least recently used bucket goes.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request

from server.api.client import client_address
from server.api.deps import CurrentDevice, RuntimeDep
from server.core.errors import NahbarError
from server.runtime import Runtime


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # clock reading when `tokens` was computed


class TokenBucketLimiter:
    """`capacity` requests at once per key, refilled evenly over `period_s`; thread-safe."""

    def __init__(
        self, capacity: int, period_s: float, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        if capacity < 1 or period_s <= 0 or max_keys < 1:
            raise ValueError("capacity and max_keys must be at least 1, period_s positive")
        self.capacity = capacity
        self.period_s = period_s
        self.max_keys = max_keys
        self._rate = capacity / period_s  # tokens per second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if allowed, else the seconds until the next token."""
        now = self._clock()
        with self._lock:
            self._drop_full(now)
            bucket = self._buckets.pop(key, None)
            tokens = (
                self.capacity
                if bucket is None
                else min(self.capacity, bucket.tokens + max(0.0, now - bucket.at) * self._rate)
            )
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self._rate
            self._buckets[key] = _Bucket(tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_full(self, now: float) -> None:
        # A bucket idle for a whole period is full again: forgetting it changes nothing.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.at < self.period_s:
                return
            self._buckets.popitem(last=False)


class RateLimited(NahbarError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(
            detail, extra={"retry_after_s": retry_after_s}, headers={"Retry-After": str(retry_after_s)}
        )
        self.retry_after_s = retry_after_s


_registry_lock = threading.Lock()


def _limiter(
    request: Request, runtime: RuntimeDep, name: str, capacity: int, period_s: float
) -> TokenBucketLimiter:
    """The app's limiter `name`, made on first use with the runtime's clock (tests inject theirs)."""
    state = request.app.state
    with _registry_lock:
        limiters: dict[str, TokenBucketLimiter] | None = getattr(state, "rate_limiters", None)
        if limiters is None:
            limiters = state.rate_limiters = {}
        limiter = limiters.get(name)
        if limiter is None:
            max_keys = runtime.settings.rate_limit_max_keys
            clock = runtime.clock
            limiter = TokenBucketLimiter(capacity, period_s, lambda: clock().timestamp(), max_keys)
            limiters[name] = limiter
        return limiter


def _take(limiter: TokenBucketLimiter, key: str, message: str) -> None:
    wait = limiter.take(key)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"{message} Retry after {retry_after} s (the Retry-After header says so too).", retry_after
        )


def limit_optin(request: Request, runtime: RuntimeDep) -> None:
    """At most `optin_per_hour_per_client` opt-ins an hour from one client address."""
    settings = runtime.settings
    per_hour = settings.optin_per_hour_per_client
    limiter = _limiter(request, runtime, "optin", per_hour, 3600)
    _take(
        limiter,
        client_address(request, settings.trusted_proxies),
        f"Too many opt-ins from this address: at most {per_hour} an hour. An app opts in once per "
        "install and keeps its device token.",
    )


def limit_sightings(request: Request, runtime: Runtime, subscriber_id: uuid.UUID) -> None:
    """At most `sightings_per_minute_per_device` sightings a minute from one device."""
    per_minute = runtime.settings.sightings_per_minute_per_device
    limiter = _limiter(request, runtime, "sightings", per_minute, 60)
    _take(
        limiter,
        str(subscriber_id),
        f"Too many sightings from this device: at most {per_minute} a minute. Report region transitions "
        "(enter, exit) and a dwell every few minutes, not every ranging callback.",
    )


def limit_by_client(
    request: Request, runtime: Runtime, name: str, capacity: int, period_s: float, message: str
) -> None:
    """At most `capacity` requests per `period_s` from one client address, for public endpoints."""
    limiter = _limiter(request, runtime, name, capacity, period_s)
    _take(limiter, client_address(request, runtime.settings.trusted_proxies), message)


PAIRING_ATTEMPTS_PER_HOUR: Final = 10


def limit_pairing(request: Request, runtime: RuntimeDep, subscriber: CurrentDevice) -> None:
    """At most ten test-device pairing attempts an hour from one device: a pairing code has 60 bits, and
    guessing stays out of reach even for a device that tries all day."""
    limiter = _limiter(request, runtime, "pairing", PAIRING_ATTEMPTS_PER_HOUR, 3600)
    _take(
        limiter,
        str(subscriber.id),
        f"Too many pairing attempts from this device: at most {PAIRING_ATTEMPTS_PER_HOUR} an hour. "
        "Ask the charity's editor for a new code and type it carefully.",
    )


OptInRateLimit = Annotated[None, Depends(limit_optin)]
PairingRateLimit = Annotated[None, Depends(limit_pairing)]
