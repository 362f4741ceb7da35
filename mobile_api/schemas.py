"""Phone-facing request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    decided_at: datetime
    expires_at: datetime | None


class InboxPublic(BaseModel):
    prompts: list[PromptPublic]
