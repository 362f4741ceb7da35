"""Schemas of the admin sign-in API: login, the caller, password change and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.core import const
from server.core.const import Role, TokenScope
from server.core.text import NOT_BLANK, not_blank


class LoginCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class MembershipBrief(BaseModel):
    organisation_id: int
    role: Role


class MePublic(BaseModel):
    id: int
    email: str
    is_operator: bool
    memberships: list[MembershipBrief]


class LoginPublic(BaseModel):
    user: MePublic
    csrf_token: str = Field(description=f"Echo it in the {const.CSRF_HEADER} header on every change.")
    expires_at: datetime


class PasswordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=const.MIN_PASSWORD_LENGTH, max_length=1024)


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK)
    scopes: list[TokenScope] = Field(min_length=1, description="read: lists and reads; write: also changes")
    expires_in_days: int | None = Field(default=90, ge=1, le=const.API_TOKEN_MAX_DAYS)

    _trimmed = field_validator("name")(not_blank)


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="Shown once: only its hash is stored.")


class AdminUserPublic(BaseModel):
    """An admin account as the operator sees it."""

    id: int
    email: str
    is_operator: bool
    created_at: datetime
    disabled_at: datetime | None = Field(
        description="Set: the account cannot log in, its credentials are dead"
    )
    memberships: list[MembershipBrief]
