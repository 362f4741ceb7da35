"""Admin-facing schemas of webhook endpoints, their messages and the log of attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.core.text import NOT_BLANK, not_blank

EventType = Literal[
    "prompt.accepted", "prompt.declined", "gateway.needs_attention", "campaign.budget_exhausted"
]
EVENT_TYPES: Final[tuple[str, ...]] = (
    "prompt.accepted",
    "prompt.declined",
    "gateway.needs_attention",
    "campaign.budget_exhausted",
)
TEST_EVENT: Final = "webhook.test"  # sent by "send test event" only, to the one endpoint asked


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8,
        max_length=2000,
        description="https URL on a public internet address (loopback and private networks are refused)",
    )
    description: str | None = Field(default=None, max_length=200, json_schema_extra=NOT_BLANK)
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))

    _trimmed = field_validator("description")(not_blank)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    description: str | None = Field(default=None, max_length=200, json_schema_extra=NOT_BLANK)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool | None = None

    _trimmed = field_validator("description")(not_blank)


class WebhookEndpointPublic(BaseModel):
    id: int
    organisation_id: int
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    previous_secret_valid_until: datetime | None = Field(
        description="While set and in the future, messages carry a signature with the previous secret too"
    )
    created_at: datetime
    version: int


class WebhookSecret(BaseModel):
    """A signing secret, shown once: when the endpoint is created and when its secret is rotated."""

    endpoint: WebhookEndpointPublic
    secret: str = Field(description="whsec_...: verify signatures with a Standard Webhooks library")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: int = Field(
        default=24, ge=0, le=168, description="How long the old secret still signs messages (both are sent)"
    )


class WebhookMessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    endpoint_id: int
    message_id: str = Field(description="The webhook-id header: the same on every retry")
    event_type: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class WebhookAttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int
    endpoint_id: int
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; None when none came")
    error: str | None
    duration_ms: int
