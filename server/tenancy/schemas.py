"""Schemas for organisations, memberships, invites and the platform settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from server.core import const
from server.core.const import Role
from server.core.datetimes import HHMM
from server.core.text import NOT_BLANK, not_blank

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Contact = Annotated[
    str,
    StringConstraints(pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+|https://\S+)$", max_length=320),
    Field(description="The data-protection contact people are shown: an e-mail address or an https URL"),
]


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    privacy_contact: Contact | None = None
    prompts_per_week: int | None = Field(
        default=None, ge=0, description="Stricter than the platform, or null"
    )
    cooldown_days: int | None = Field(default=None, ge=0, le=3650, description="Longer than the platform's")

    _trimmed = field_validator("name")(not_blank)


class OrganisationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    privacy_contact: Contact | None = None
    prompts_per_week: int | None = Field(default=None, ge=0)
    cooldown_days: int | None = Field(default=None, ge=0, le=3650)

    _trimmed = field_validator("name")(not_blank)


class OrganisationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    privacy_contact: str | None
    prompts_per_week: int | None
    cooldown_days: int | None
    created_at: datetime
    version: int
    suspended_at: datetime | None = Field(
        default=None, description="Set by the operator: its campaigns do not run and cannot start"
    )


class MembershipPublic(BaseModel):
    id: int
    organisation_id: int
    user_id: int
    email: str
    role: Role
    created_at: datetime
    version: int = Field(description='The ETag is "v<version>"; send it as If-Match to change the role')


class MembershipUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role = Role.VIEWER


class InvitePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organisation_id: int
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InviteCreated(InvitePublic):
    token: str = Field(description="Shown once: only its hash is stored.")
    url: str = Field(description="The one-time link to send to the invitee")


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)
    password: str = Field(
        min_length=1,
        max_length=1024,
        description=f"A new account's password ({const.MIN_PASSWORD_LENGTH}+ characters), "
        "or the existing account's",
    )


class PlatformSettingsPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    max_prompts_per_day: int
    max_prompts_per_week: int
    max_prompts_per_month: int
    min_org_cooldown_days: int
    retention_days: int
    min_dwell_s: int
    allow_walk_by: bool
    quiet_start: str
    quiet_end: str
    updated_at: datetime
    version: int


class PlatformSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_prompts_per_day: int | None = Field(default=None, ge=0, le=10)
    max_prompts_per_week: int | None = Field(default=None, ge=0, le=50)
    max_prompts_per_month: int | None = Field(default=None, ge=0, le=200)
    min_org_cooldown_days: int | None = Field(default=None, ge=0, le=365)
    retention_days: int | None = Field(default=None, ge=1, le=365)
    min_dwell_s: int | None = Field(
        default=None,
        ge=1,
        le=3_600,
        description="Least dwell (s) any campaign may ask for, and the dwell of those that set none",
    )
    allow_walk_by: bool | None = Field(
        default=None, description="Whether campaigns with a minimum dwell of 0 (decided on enter) may run"
    )
    quiet_start: HHMM | None = Field(
        default=None,
        description="Start of the quiet hours on each site's clock (HH:MM); may span midnight",
    )
    quiet_end: HHMM | None = Field(default=None, description="End of the quiet hours (HH:MM)")
