"""Admin schemas for campaigns and their localised variants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.core import const
from server.core.const import CampaignKind, CampaignStatus
from server.core.datetimes import HHMM, ApiDatetime
from server.core.text import NOT_BLANK, not_blank


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Literal["de", "en"]
    label: str = Field(default="A", pattern=r"^[A-Z][A-Z0-9]{0,15}$", description="A/B arm")
    title: str = Field(min_length=1, max_length=const.VARIANT_TITLE_MAX, json_schema_extra=NOT_BLANK)
    body: str = Field(min_length=1, max_length=const.VARIANT_BODY_MAX, json_schema_extra=NOT_BLANK)
    cta_label: str = Field(min_length=1, max_length=const.VARIANT_CTA_MAX, json_schema_extra=NOT_BLANK)

    _trimmed = field_validator("title", "body", "cta_label")(not_blank)


class VariantPublic(VariantIn):
    model_config = ConfigDict(from_attributes=True)

    id: int


class _CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: ApiDatetime | None = None
    ends_at: ApiDatetime | None = None
    daily_from: HHMM | None = Field(default=None, description="Local time at the site, with daily_until")
    daily_until: HHMM | None = None
    cta_url: str | None = Field(
        default=None, max_length=const.CTA_URL_MAX, description="Must be https to activate"
    )
    daily_budget: int | None = Field(default=None, ge=0, le=100_000, description="Prompts per day, all sites")
    min_dwell_s: int | None = Field(default=None, ge=0, le=3_600)
    max_dwell_s: int | None = Field(default=None, ge=0, le=86_400)


class CampaignCreate(_CampaignFields):
    organisation_id: int
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    kind: CampaignKind
    priority: int = Field(default=0, ge=0, le=100)
    site_ids: list[int] = Field(default_factory=list, max_length=500)
    variants: list[VariantIn] = Field(default_factory=list, max_length=20)

    _trimmed = field_validator("name")(not_blank)


class CampaignUpdate(_CampaignFields):
    name: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    kind: CampaignKind | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    site_ids: list[int] | None = Field(default=None, max_length=500)
    variants: list[VariantIn] | None = Field(default=None, max_length=20, description="Replaces all variants")

    _trimmed = field_validator("name")(not_blank)


class CampaignPublic(BaseModel):
    id: int
    organisation_id: int
    name: str
    kind: CampaignKind
    status: CampaignStatus
    priority: int
    starts_at: datetime | None
    ends_at: datetime | None
    daily_from: str | None
    daily_until: str | None
    cta_url: str | None
    daily_budget: int | None
    min_dwell_s: int | None
    max_dwell_s: int | None
    site_ids: list[int]
    variants: list[VariantPublic]
    created_at: datetime
    version: int
