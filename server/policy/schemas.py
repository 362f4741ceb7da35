"""What the simulator endpoint takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.core.datetimes import HHMM, ApiDatetime


class PolicyProposal(BaseModel):
    """Platform-level settings to try (caps, quiet hours, dwell); omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    max_per_day: int | None = Field(default=None, ge=0, le=10)
    max_per_week: int | None = Field(default=None, ge=0, le=50)
    max_per_month: int | None = Field(default=None, ge=0, le=200)
    org_cooldown_days: int | None = Field(default=None, ge=0, le=365)
    dismiss_cooldown_days: int | None = Field(default=None, ge=0, le=3650)
    min_dwell_s: int | None = Field(default=None, ge=1, le=3600)
    max_dwell_s: int | None = Field(default=None, ge=1, le=86_400)
    allow_walk_by: bool | None = None
    quiet_start: HHMM | None = None
    quiet_end: HHMM | None = None


class CampaignProposal(BaseModel):
    """A campaign's settings to try: schedule, budget, dwell, priority, or pausing it."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern="^(active|paused|ended)$")
    priority: int | None = Field(default=None, ge=-100, le=100)
    starts_at: ApiDatetime | None = None
    ends_at: ApiDatetime | None = None
    daily_from: HHMM | None = None
    daily_until: HHMM | None = None
    daily_budget: int | None = Field(default=None, ge=0, le=1_000_000)
    min_dwell_s: int | None = Field(default=None, ge=0, le=3600)
    max_dwell_s: int | None = Field(default=None, ge=1, le=86_400)


class OrganisationProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts_per_week: int | None = Field(default=None, ge=0, le=50)
    cooldown_days: int | None = Field(default=None, ge=0, le=365)


class SimulationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=30, ge=1, le=90, description="Replay the last this many days")
    policy: PolicyProposal = Field(default_factory=PolicyProposal)
    campaigns: dict[int, CampaignProposal] = Field(default_factory=dict, description="By campaign id")
    organisation: OrganisationProposal = Field(default_factory=OrganisationProposal)


class SimulationPublic(BaseModel):
    start: datetime
    end: datetime
    current: dict[str, Any]
    proposed: dict[str, Any]
    prompts_delta: int
    people_reached_delta: int
