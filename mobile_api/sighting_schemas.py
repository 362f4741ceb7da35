"""What an iOS phone sends to /mobile/v1/sightings and what it gets back."""

from __future__ import annotations

from typing import Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mobile_api.schemas import PromptPublic
from server.core.const import EventKind
from server.core.datetimes import ApiDatetime

MAX_SIGHTING_BYTES: Final = 4_096  # one sighting is ~300 bytes; anything near this is not a sighting


class SightingCreate(BaseModel):
    """The phone entered, stayed in or left a site's iBeacon region, as iOS region monitoring reports it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Idempotency key, unique per phone: resending the same id stores nothing new",
    )
    kind: EventKind
    uuid: UUID = Field(description="The region's iBeacon proximity UUID")
    major: int = Field(ge=0, le=65_535, description="The region's iBeacon major: which site")
    minor: int | None = Field(
        default=None, ge=0, le=65_535, description="Accepted for convenience; not stored or used"
    )
    observed_at: ApiDatetime = Field(description="When the phone saw it, with a UTC offset")
    rssi: float | None = Field(default=None, ge=-127, le=20, description="RSSI, dBm, if the app ranged it")
    dwell_s: float = Field(default=0, ge=0, le=86_400, description="Seconds inside the region so far")


class SightingPublic(BaseModel):
    """What the decision was: a prompt to show now (it is in the inbox too), or the reason there is none."""

    stored: bool = Field(description="This delivery stored the sighting")
    duplicate: bool = Field(description="An earlier delivery with this id was stored; nothing new happened")
    prompt: PromptPublic | None = Field(description="The prompt as the inbox shows it, or null")
    reason: str = Field(
        description="The decision's reason code (`prompted`, `global_daily_cap`, ...), or why none was made: "
        "`visit_already_decided`, `exit`, `stale` (observed longer ago than a prompt lives), `duplicate`"
    )
