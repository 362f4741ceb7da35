"""The control channel: pull the gateway's config (with an ETag) and send heartbeats for the fleet view.

Both go to the same server as the events, with the same bearer token. Every failure becomes a
`ControlError` whose message says what to do; the caller keeps its current config and tries again later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final, NamedTuple, TypeAlias

import httpx

from beacon_agent.tracker import TrackerConfig

log = logging.getLogger(__name__)

CONFIG_PATH: Final = "/gateway/v1/config"
HEARTBEAT_PATH: Final = "/gateway/v1/heartbeat"
MAX_BEACONS: Final = 100  # the server's limit of sightings per heartbeat
REQUEST_TIMEOUT: Final = httpx.Timeout(30.0, connect=15.0)
_TRACKER_FIELDS: Final = {f.name: f.type for f in fields(TrackerConfig)}
_RSSI_MIN: Final = -127.0
_RSSI_MAX: Final = 20.0
_SEEN_AGO_MAX_S: Final = 7 * 86_400.0


class BeaconSeen(NamedTuple):
    """One of the site's own beacons as the tracker last saw it."""

    identifier: str  # frames.identifier(frame), e.g. "ibeacon:<uuid>/<major>/<minor>"
    rssi: float
    seen_s_ago: float
    battery_mv: int | None = None


# A plain (identifier, rssi, seen_s_ago) tuple is accepted too.
BeaconSighting: TypeAlias = BeaconSeen | tuple[str, float, float]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the server wants this gateway to run with; applied without a restart."""

    tracker: TrackerConfig
    watched: frozenset[str]  # the site's own beacons, as frames.identifier renders them
    heartbeat_s: float
    etag: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The gateway's health; field for field the body of POST /gateway/v1/heartbeat."""

    adverts_seen_per_s: float
    adverts_kept_per_s: float
    adverts_dropped_per_s: float
    outbox_depth: int
    outbox_dropped_full: int
    outbox_set_aside: int
    scanner_restarts: int
    scanner_power_cycles: int
    scanner_mode: str
    uptime_s: float
    version: str
    beacons: Sequence[BeaconSighting] = field(default=())
    scanner_state: str | None = None  # starting, scanning, failing, stopped; None: no BLE scanner (demo)
    scanner_failures: int = 0  # failed starts (or silent scans) in a row
    scanner_error: str | None = None  # the kind of the last scanner error (bluez_check.FaultKind)

    def to_wire(self) -> dict[str, object]:
        """The JSON object the server takes; sightings capped and clamped so one odd reading cannot get the
        whole heartbeat refused."""
        sightings = sorted((BeaconSeen(*b) for b in self.beacons), key=lambda b: b.seen_s_ago)[:MAX_BEACONS]
        return {
            "adverts_seen_per_s": max(0.0, float(self.adverts_seen_per_s)),
            "adverts_kept_per_s": max(0.0, float(self.adverts_kept_per_s)),
            "adverts_dropped_per_s": max(0.0, float(self.adverts_dropped_per_s)),
            "outbox_depth": self.outbox_depth,
            "outbox_dropped_full": self.outbox_dropped_full,
            "outbox_set_aside": self.outbox_set_aside,
            "scanner_restarts": self.scanner_restarts,
            "scanner_power_cycles": self.scanner_power_cycles,
            "scanner_mode": self.scanner_mode,
            "scanner_state": self.scanner_state,
            "scanner_failures": self.scanner_failures,
            "scanner_error": self.scanner_error,
            "uptime_s": max(0.0, float(self.uptime_s)),
            "version": self.version[:40],
            "beacons": [
                {
                    "identifier": b.identifier,
                    "rssi": min(max(float(b.rssi), _RSSI_MIN), _RSSI_MAX),
                    "seen_s_ago": min(max(float(b.seen_s_ago), 0.0), _SEEN_AGO_MAX_S),
                    "battery_mv": b.battery_mv,
                }
                for b in sightings
            ],
        }


class ControlError(Exception):
    """The server could not be asked, or refused; `status` is the HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def token_refused(self) -> bool:
        """True when the gateway must be enrolled again before the server will talk to it."""
        return self.status in (401, 403)


def _detail(answer: httpx.Response) -> str:
    """The problem+json detail (with the fields at fault, when the server named them), or the reason."""
    try:
        body = answer.json()
    except ValueError:
        return answer.reason_phrase or "no detail"
    if not isinstance(body, dict):
        return answer.reason_phrase or "no detail"
    detail = str(body.get("detail") or answer.reason_phrase or "no detail")
    errors = body.get("errors")
    if isinstance(errors, list):
        named = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
        if named:
            detail += " [" + "; ".join(named) + "]"
    return detail


def _refusal(what: str, answer: httpx.Response) -> ControlError:
    status, detail = answer.status_code, _detail(answer)
    if status in (401, 403):
        hint = "re-enrol this gateway: beacon-agent enroll --server URL --code CODE"
    elif status == 413:
        hint = "the request was too large for the server"
    elif status == 429 or status >= 500:
        hint = "the server is busy or failing; it will be tried again"
    else:
        hint = "the server and this agent may be different versions; update the agent"
    return ControlError(f"{what} refused (HTTP {status}: {detail}); {hint}", status)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is not a number: {value!r}")
    return float(value)


def parse_config(body: Any, etag: str) -> GatewayConfig:
    """Read GET /gateway/v1/config's JSON; unknown fields (a newer server) are ignored, missing ones default.

    Raises ValueError when the body is not a gateway config.
    """
    if not isinstance(body, Mapping):
        raise ValueError("the answer is not a JSON object")
    tracker = body.get("tracker")
    watched = body.get("watched")
    if not isinstance(tracker, Mapping) or not isinstance(watched, list):
        raise ValueError("the answer has no 'tracker' object or no 'watched' list")
    values: dict[str, Any] = {}
    for name, kind in _TRACKER_FIELDS.items():
        if name not in tracker:
            continue
        if kind in ("tuple[float, ...]", tuple[float, ...]):
            items = tracker[name]
            if not isinstance(items, list):
                raise ValueError(f"tracker.{name} is not a list: {items!r}")
            values[name] = tuple(_number(item, f"tracker.{name}[]") for item in items)
            continue
        number = _number(tracker[name], f"tracker.{name}")
        values[name] = int(number) if kind in ("int", int) else number
    keys = set()
    for item in watched:
        key = item.get("identifier") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key:
            raise ValueError(f"a watched beacon has no identifier: {item!r}")
        keys.add(key)
    heartbeat_s = _number(body.get("heartbeat_s"), "heartbeat_s")
    if heartbeat_s <= 0:
        raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
    return GatewayConfig(TrackerConfig(**values), frozenset(keys), heartbeat_s, etag)


class Control:
    """Config and heartbeat requests; `client.base_url` is the server, `token` the gateway's bearer token."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self._client = client
        self._token = token
        self._etag: str | None = None

    @property
    def etag(self) -> str | None:
        """The ETag of the last config fetched, sent as If-None-Match."""
        return self._etag

    def set_token(self, token: str) -> None:
        """Use a new token (after re-enrolment); the next fetch gets the whole config again."""
        self._token = token
        self._etag = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def fetch_config(self) -> GatewayConfig | None:
        """The gateway's config, or None when it is unchanged since the last fetch (304)."""
        headers = self._headers()
        if self._etag:
            headers["If-None-Match"] = self._etag
        try:
            answer = await self._client.get(CONFIG_PATH, headers=headers, timeout=REQUEST_TIMEOUT)
        except httpx.HTTPError as exc:
            raise ControlError(
                f"cannot reach the server for the config ({type(exc).__name__}: {exc})"
            ) from exc
        if answer.status_code == 304:
            return None
        if answer.status_code != 200:
            raise _refusal("config request", answer)
        etag = answer.headers.get("ETag", "")
        try:
            config = parse_config(answer.json(), etag)
        except ValueError as exc:
            # A captive portal or proxy answers 200 too; only the server's config is applied.
            raise ControlError(
                f"the answer to the config request is not a gateway config ({exc})", 200
            ) from exc
        self._etag = etag or None
        return config

    async def send_heartbeat(self, heartbeat: Heartbeat) -> None:
        """Deliver one heartbeat; it is not queued or resent, the next one carries fresher numbers anyway."""
        try:
            answer = await self._client.post(
                HEARTBEAT_PATH, json=heartbeat.to_wire(), headers=self._headers(), timeout=REQUEST_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise ControlError(
                f"cannot reach the server for the heartbeat ({type(exc).__name__}: {exc})"
            ) from exc
        if not answer.is_success:
            raise _refusal("heartbeat", answer)
