"""Gateway-facing schemas: enrolment, the gateway's config and its heartbeat."""

from __future__ import annotations

from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=12, max_length=20, description="The one-time code, e.g. ABCD-EFGH-JKLM")
    agent_version: str | None = Field(default=None, max_length=40)


class EnrolmentPublic(BaseModel):
    gateway_id: int
    site_id: int
    token: str = Field(description="Shown once; the agent stores it with 0600 permissions.")
    config: dict[str, Any]


# --- The control channel: GET /gateway/v1/config and POST /gateway/v1/heartbeat ---------------------------

MAX_WATCHED: Final = 100  # site beacons per config, and beacon sightings per heartbeat
MAX_HEARTBEAT_BYTES: Final = 32_768  # a full heartbeat is ~15 kB; far less than the 1 MiB request limit
DEFAULT_HEARTBEAT_S: Final = 60.0

COUNTER_MAX: Final = 2**53  # what a JSON number holds exactly


class TrackerSettings(BaseModel):
    """Presence thresholds and calibration: the agent's `TrackerConfig`, field for field, same defaults."""

    model_config = ConfigDict(extra="forbid")

    enter_rssi: float = Field(
        default=-85.0, ge=-127, le=20, description="Smoothed RSSI (dBm) that starts a presence"
    )
    exit_rssi: float = Field(default=-92.0, ge=-127, le=20, description="Below this for exit_after_s ends it")
    exit_after_s: float = Field(default=20.0, ge=1, le=3_600)
    dwell_every_s: float = Field(
        default=60.0,
        ge=1,
        le=3_600,
        description="A dwell that only says 'still here'; keep it below the server's visit gap (120 s)",
    )
    dwell_marks: tuple[float, ...] = Field(
        default=(15.0, 1200.0),
        max_length=64,
        description="Dwell seconds at which the server decides (its campaigns' minimum dwell, the staff "
        "limit): a dwell is sent at the first sighting at or past each. Set by the server from the site's "
        "campaigns, not by overrides.",
    )
    rotation_s: float = Field(
        default=1024.0, ge=1, le=65_536, description="Phones' EID rotation period (2^K s)"
    )
    process_noise: float = Field(default=0.5, gt=0, le=1_000, description="Kalman q")
    measurement_noise: float = Field(default=16.0, gt=0, le=1_000, description="Kalman r")
    default_power_1m: float = Field(
        default=-59.0, ge=-127, le=20, description="RSSI at 1 m without calibration"
    )
    path_loss_exponent: float = Field(default=2.2, ge=1, le=6)
    max_tracked: int = Field(default=4_096, ge=16, le=100_000)

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.exit_rssi > self.enter_rssi:
            raise ValueError("exit_rssi must be at or below enter_rssi (the hysteresis gap)")
        return self


class GatewayConfigUpdate(BaseModel):
    """What `Gateway.config` may hold: overrides of the server's defaults, every field optional."""

    model_config = ConfigDict(extra="forbid")

    tracker: dict[str, Any] = Field(default_factory=dict, description="TrackerSettings fields to set")
    heartbeat_s: float | None = Field(default=None, ge=10, le=3_600)


class WatchedBeaconPublic(BaseModel):
    identifier: str = Field(
        description="As the agent keys decoded frames: 'ibeacon:<uuid>/<major>/<minor>', "
        "'altbeacon:<32 hex>/<major>/<minor>' or 'eddystone_uid:<20 hex>/<12 hex>'"
    )
    measured_power: int | None = Field(description="Calibrated RSSI at 1 m, dBm, when measured")


class GatewayConfigPublic(BaseModel):
    """A gateway's effective config; the agent applies it without restarting."""

    tracker: TrackerSettings
    watched: list[WatchedBeaconPublic] = Field(max_length=MAX_WATCHED)
    heartbeat_s: float = Field(ge=10, le=3_600, description="Seconds between heartbeats")


class BeaconSightingIn(BaseModel):
    """One of the site's own beacons as the gateway last saw it."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(min_length=3, max_length=120, pattern=r"^[a-z_]+:[0-9A-Fa-f/-]+$")
    rssi: float = Field(ge=-127, le=20)
    seen_s_ago: float = Field(ge=0, le=7 * 86_400, description="Seconds between the sighting and sending")
    battery_mv: int | None = Field(default=None, ge=0, le=10_000)


class HeartbeatIn(BaseModel):
    """A gateway's health, sent every `heartbeat_s` seconds; the server keeps the latest for fleet health."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40, description="The agent's version")
    uptime_s: float = Field(ge=0, le=10 * 365 * 86_400)
    scanner_mode: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="e.g. passive, active, stopped")
    adverts_seen_per_s: float = Field(ge=0, le=1_000_000)
    adverts_kept_per_s: float = Field(ge=0, le=1_000_000)
    adverts_dropped_per_s: float = Field(ge=0, le=1_000_000)
    outbox_depth: int = Field(ge=0, le=100_000_000)
    outbox_dropped_full: int = Field(
        ge=0, le=COUNTER_MAX, description="Events dropped because the outbox was full, ever"
    )
    outbox_set_aside: int = Field(
        ge=0, le=COUNTER_MAX, description="Events the server refused for good, ever"
    )
    scanner_restarts: int = Field(ge=0, le=COUNTER_MAX)
    scanner_power_cycles: int = Field(
        ge=0, le=COUNTER_MAX, description="Bluetooth adapter power cycles by the watchdog"
    )
    # Optional: agents older than these fields send none of them.
    scanner_state: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="starting, scanning, failing (the scan is down and being retried) or stopped",
    )
    scanner_failures: int = Field(
        default=0, ge=0, le=COUNTER_MAX, description="Failed scan starts (or silent scans) in a row"
    )
    scanner_error: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="The kind of the last scanner error, e.g. adapter_missing, adapter_off, "
        "bluez_not_running, permission_denied, dbus_unavailable, busy, timeout, silent, other",
    )
    beacons: list[BeaconSightingIn] = Field(default_factory=list, max_length=MAX_WATCHED)
