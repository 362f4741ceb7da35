"""Admin-facing schemas for sites, their own beacons and their gateways (the agent's are in schemas.py)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from server.core import const
from server.core.datetimes import HHMM
from server.core.text import NOT_BLANK, not_blank

Language = Literal["de", "en"]
BeaconKind = Literal["ibeacon", "altbeacon", "eddystone_uid"]
Health = Literal["pending", "ok", "stale", "silent", "scanner_failing", "revoked"]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(name: str) -> str:
    # ZoneInfo also opens paths like "../../etc/x" or "posixrules"; only real IANA names are accepted.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from exc
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin")
    return name


QUIET_HOURS: Final = (
    "The site's quiet hours, local HH:MM, with quiet_end (may wrap midnight): no prompts inside them. They "
    "widen the operator's quiet hours (21:00-08:00 by default), never narrow them."
)
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]
assert set(const.LANGUAGES) == {"de", "en"}  # keep Language in step


class SiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: int
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    address: str | None = Field(default=None, max_length=500, json_schema_extra=NOT_BLANK)
    timezone: TimeZone | None = Field(
        default=None, description="IANA name; without it the site never prompts"
    )
    language: Language = "de"
    quiet_start: HHMM = Field(default=const.DEFAULT_QUIET_START, description=QUIET_HOURS)
    quiet_end: HHMM = const.DEFAULT_QUIET_END
    ibeacon_uuid: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    ibeacon_major: int | None = Field(default=None, ge=0, le=65535)

    _trimmed = field_validator("name", "address")(not_blank)


class SiteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    address: str | None = Field(default=None, max_length=500, json_schema_extra=NOT_BLANK)
    timezone: TimeZone | None = None
    language: Language | None = None
    quiet_start: HHMM | None = Field(default=None, description=QUIET_HOURS)
    quiet_end: HHMM | None = None
    ibeacon_uuid: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    ibeacon_major: int | None = Field(default=None, ge=0, le=65535)
    open_data: bool | None = Field(
        default=None,
        description="Publish this site's daily counts (k-anonymised) at the organisation's open-data URL",
    )

    _trimmed = field_validator("name", "address")(not_blank)


class SitePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organisation_id: int
    name: str
    address: str | None
    timezone: str | None
    language: str
    quiet_start: str
    quiet_end: str
    ibeacon_uuid: str | None
    ibeacon_major: int | None
    open_data: bool
    created_at: datetime
    version: int


class BeaconCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: BeaconKind
    identifier: str = Field(
        min_length=3,
        max_length=80,
        description="'uuid/major/minor' (iBeacon, AltBeacon) or 'namespace/instance'",
    )
    label: str | None = Field(default=None, max_length=200, json_schema_extra=NOT_BLANK)
    measured_power: int | None = Field(default=None, ge=-127, le=20, description="Calibrated RSSI at 1 m")

    _trimmed = field_validator("label")(not_blank)


class BeaconPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    kind: str
    identifier: str
    label: str | None
    measured_power: int | None
    last_seen_at: datetime | None
    battery_mv: int | None


class GatewayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)

    _trimmed = field_validator("name")(not_blank)


class GatewayPublic(BaseModel):
    id: int
    organisation_id: int
    site_id: int
    name: str
    enrolled_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None
    health: Health = Field(
        description="pending: not enrolled; silent: never heard; stale: heartbeats late; scanner_failing: "
        "heartbeats arrive but the Bluetooth scan keeps failing (see last_heartbeat.scanner_error)"
    )
    last_heartbeat: dict[str, Any] | None
    created_at: datetime
    version: int


class GatewayEnrolment(BaseModel):
    gateway: GatewayPublic
    code: str = Field(description="One-time enrolment code, shown once")
    expires_at: datetime
    command: str = Field(description="What to run on the Pi")
