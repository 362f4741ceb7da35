"""Gateway-facing schemas for enrolment."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=12, max_length=20, description="The one-time code, e.g. ABCD-EFGH-JKLM")
    agent_version: str | None = Field(default=None, max_length=40)


class EnrolmentPublic(BaseModel):
    gateway_id: int
    site_id: int
    token: str = Field(description="Shown once; the agent stores it with 0600 permissions.")
    config: dict[str, Any]
