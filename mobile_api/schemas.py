"""Phone-facing request and response bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from server.core.const import DEFAULT_MAX_PER_DAY, DEFAULT_MAX_PER_MONTH, DEFAULT_MAX_PER_WEEK

RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="An id from an earlier answer")]
# A prompt's id (its decision's) is numbered by a 64-bit sequence (server.core.db.GrowingId).
PromptId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A prompt's id, from the inbox")]


class OptInCreate(BaseModel):
    """Explicit consent: which kinds of prompt, in which language, to which text version."""

    model_config = ConfigDict(extra="forbid")

    consent_text_version: str = Field(max_length=32)
    scopes: list[Literal["volunteer", "donation"]] = Field(min_length=1, max_length=2)
    language: Literal["de", "en"] = "de"


class OptInPublic(BaseModel):
    device_token: str = Field(description="Bearer token for /mobile/v1; shown once, store it in the keychain")
    identity_key: str = Field(description="16-byte Eddystone-EID identity key, hex; never leaves the phone")
    rotation_exponent: int = Field(description="K: the EID rotates every 2^K seconds")
    server_time: datetime = Field(description="Align the phone's EID counter with this clock")


class PromptPublic(BaseModel):
    id: int
    organisation: str
    site: str
    campaign_kind: str
    language: str
    title: str
    body: str
    cta_label: str
    cta_url: str | None
    landing_url: str = Field(
        description="The prompt's page (/p/{token}): the request and its answers; the link its push carries"
    )
    decided_at: datetime
    expires_at: datetime | None
    test: bool = Field(default=False, description="A charity's test send to this paired test phone")


class InboxPublic(BaseModel):
    prompts: list[PromptPublic]


# --- Preferences --------------------------------------------------------------------------------------

Scope = Literal["volunteer", "donation"]
Language = Literal["de", "en"]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time, HH:MM")]


class QuietHours(BaseModel):
    """The person's own quiet hours, on top of the platform's; may wrap midnight (22:00-07:00)."""

    model_config = ConfigDict(extra="forbid")

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are equal; send null to have no quiet hours of your own")
        return self


def _at_most(limit: int, what: str) -> Callable[[int | None], int | None]:
    def check(value: int | None) -> int | None:
        if value is not None and value > limit:
            raise ValueError(
                f"{value} is above the platform maximum of {limit} {what}; your own caps can only be "
                f"stricter (1 to {limit})"
            )
        return value

    return check


class Caps(BaseModel):
    """The person's own caps; each may only be stricter than the platform's maximum; null = the maximum."""

    model_config = ConfigDict(extra="forbid")

    per_day: Annotated[
        int | None, Field(ge=1), AfterValidator(_at_most(DEFAULT_MAX_PER_DAY, "prompts per day"))
    ] = None
    per_week: Annotated[
        int | None, Field(ge=1), AfterValidator(_at_most(DEFAULT_MAX_PER_WEEK, "prompts per 7 days"))
    ] = None
    per_month: Annotated[
        int | None, Field(ge=1), AfterValidator(_at_most(DEFAULT_MAX_PER_MONTH, "prompts per 30 days"))
    ] = None


class PreferencesUpdate(BaseModel):
    """Change what you send; leave the rest out. A change of scopes is recorded as a new consent."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] | None = Field(default=None, min_length=1, max_length=2)
    consent_text_version: str | None = Field(
        default=None, max_length=32, description="The consent text shown for a scope change; default: current"
    )
    language: Language | None = None
    quiet_hours: QuietHours | None = Field(default=None, description="null removes your own quiet hours")
    caps: Caps | None = Field(default=None, description="null returns to the platform maxima")


class PreferencesPublic(BaseModel):
    scopes: list[str]
    language: str
    quiet_hours: QuietHours | None
    caps: Caps
    platform_caps: Caps = Field(description="The maxima your own caps may tighten")


# --- Exclusions ---------------------------------------------------------------------------------------


class ExclusionCreate(BaseModel):
    """ "Not at this site" (site_id) or "not from this charity" (organisation_id): exactly one."""

    model_config = ConfigDict(extra="forbid")

    site_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    organisation_id: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.site_id is None) == (self.organisation_id is None):
            raise ValueError("send exactly one of site_id ('not at this site') or organisation_id")
        return self


class ExclusionPublic(BaseModel):
    id: int
    site_id: int | None
    organisation_id: int | None
    name: str = Field(description="The site's or the charity's name")
    created_at: datetime


class ExclusionsPublic(BaseModel):
    exclusions: list[ExclusionPublic]


# --- Push channels ------------------------------------------------------------------------------------

Base64Url = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


def _b64url_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))


class WebPushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: Base64Url = Field(max_length=100, description="The browser's P-256 public key, base64url")
    auth: Base64Url = Field(max_length=32, description="The 16-byte auth secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _p256_point(cls, value: str) -> str:
        raw = _b64url_bytes(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 point: 65 bytes starting with 0x04, base64url")
        return value

    @field_validator("auth")
    @classmethod
    def _sixteen_bytes(cls, value: str) -> str:
        if len(_b64url_bytes(value)) != 16:
            raise ValueError("must be 16 bytes, base64url")
        return value


class WebPushChannelCreate(BaseModel):
    """A browser's PushSubscription (`subscription.toJSON()` without expirationTime)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webpush"]
    endpoint: str = Field(min_length=12, max_length=2000)
    keys: WebPushKeys

    @field_validator("endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("must be the push service's https:// URL from the browser's PushSubscription")
        return value


class FcmChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["fcm"]
    token: str = Field(min_length=32, max_length=1024, pattern=r"^[A-Za-z0-9_:.-]+$")


class ApnsChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["apns"]
    token: str = Field(min_length=64, max_length=200, pattern=r"^([0-9a-fA-F]{2})+$", description="hex")
    environment: Literal["sandbox", "production"]


PushChannelCreate = Annotated[
    WebPushChannelCreate | FcmChannelCreate | ApnsChannelCreate, Field(discriminator="kind")
]


class CapabilitiesPublic(BaseModel):
    push_channels: list[Literal["webpush", "fcm", "apns"]] = Field(
        description="The push channel kinds this server can send to; registering another kind is refused "
        "(409 channel_not_enabled). The inbox (GET /mobile/v1/me/prompts) always works."
    )
    webpush_public_key: str | None = Field(
        description="The VAPID public key, base64url: the applicationServerKey for PushManager.subscribe(); "
        "null when Web Push is off"
    )
    languages: list[str] = Field(description="The languages prompts and pages come in")


class PushChannelPublic(BaseModel):
    id: int
    kind: str
    endpoint: str = Field(description="The Web Push endpoint, or the FCM / APNs token")
    environment: str | None = Field(description="APNs only: sandbox or production")
    created_at: datetime
    retired_at: datetime | None = Field(description="Set when the push service said the channel is gone")


class PushChannelsPublic(BaseModel):
    channels: list[PushChannelPublic]


# --- Responses to prompts -----------------------------------------------------------------------------


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["opened", "accepted", "dismissed", "not_here", "not_this_org"]


class ResponsePublic(BaseModel):
    id: int
    decision_id: int
    kind: str
    at: datetime
    exclusion_id: int | None = Field(description="The exclusion a not_here / not_this_org response made")


# --- Export (GDPR Art. 15 and 20) ---------------------------------------------------------------------


class ExportProfile(BaseModel):
    id: str
    scopes: list[str]
    language: str
    preferences: dict[str, Any]
    rotation_exponent: int
    created_at: datetime


class ExportConsent(BaseModel):
    id: int
    text_version: str
    scopes: list[str]
    language: str
    given_at: datetime
    withdrawn_at: datetime | None


class ExportPushChannel(BaseModel):
    id: int
    kind: str
    endpoint: str
    keys: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


class ExportExclusion(BaseModel):
    id: int
    site_id: int | None
    organisation_id: int | None
    created_at: datetime


class ExportEvent(BaseModel):
    id: int
    site_id: int
    gateway_id: int | None = Field(description="The gateway that saw you; null for your phone's own sighting")
    visit_id: int | None
    kind: str
    source: str
    observed_at: datetime
    received_at: datetime
    rssi: float | None
    distance_m: float | None
    dwell_s: float


class ExportVisit(BaseModel):
    id: int
    site_id: int
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    dwell_s: float
    min_distance_m: float | None
    decided_at: datetime | None


class ExportDecision(BaseModel):
    id: int
    site_id: int
    visit_id: int | None
    campaign_id: int | None
    variant_id: int | None
    outcome: str
    reason: str = Field(description="Why you were or were not prompted (reason code)")
    decided_at: datetime
    local_day: date | None
    expires_at: datetime | None


class ExportDelivery(BaseModel):
    id: int
    decision_id: int
    channel_kind: str
    channel_id: int | None
    status: str
    attempts: int
    sent_at: datetime | None
    created_at: datetime


class ExportResponse(BaseModel):
    id: int
    decision_id: int
    kind: str
    at: datetime


class ExportPairedDevice(BaseModel):
    id: int
    organisation_id: int = Field(description="The charity whose test sends this phone receives")
    label: str
    paired_at: datetime


class ExportPastPrompt(BaseModel):
    decided_at: datetime
    local_day: date = Field(description="The calendar day at the site")
    organisation_id: int
    campaign_id: int


class ExportAnswer(BaseModel):
    campaign_id: int
    at: datetime


class ExportHistory(BaseModel):
    """What the limits on prompts keep of your past once the raw decisions are deleted."""

    prompts: list[ExportPastPrompt] = Field(
        description="Your prompts of the last 30 days, and the latest of each campaign"
    )
    dismissed: list[ExportAnswer] = Field(description="Per campaign, when you last dismissed it")
    accepted: list[ExportAnswer] = Field(description="Per campaign, when you accepted it: never asked again")
    updated_at: datetime


class ExportPublic(BaseModel):
    """Everything stored about you, as one JSON document (GDPR Art. 15 and 20)."""

    exported_at: datetime
    notes: list[str] = Field(description="What is held in a form that cannot be exported, and why")
    profile: ExportProfile
    consent_records: list[ExportConsent]
    push_channels: list[ExportPushChannel]
    exclusions: list[ExportExclusion]
    proximity_events: list[ExportEvent]
    visits: list[ExportVisit]
    decisions: list[ExportDecision]
    deliveries: list[ExportDelivery]
    responses: list[ExportResponse]
    test_devices: list[ExportPairedDevice] = Field(
        description="Charities this phone paired itself with, to receive their test sends"
    )
    history: ExportHistory | None = Field(
        description="What the limits on prompts keep of your past (none before your first prompt or answer)"
    )


# --- Public pages -------------------------------------------------------------------------------------


class ConsentVersionPublic(BaseModel):
    version: str
    languages: list[str]
    urls: dict[str, str] = Field(description="The text per language, relative to the server")


class ConsentVersionsPublic(BaseModel):
    current: str = Field(description="Send this as consent_text_version when opting in")
    versions: list[ConsentVersionPublic]
