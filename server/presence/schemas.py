"""What a gateway sends to /gateway/v1/events and what it gets back."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from server.core.const import EventKind
from server.core.datetimes import ApiDatetime
from server.core.errors import ProblemDetails

MAX_BATCH = 500


class EventIn(BaseModel):
    """One presence event of one rotating identifier, as the gateway's tracker emitted it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Idempotency key")
    kind: EventKind
    eid: str = Field(pattern=r"^[0-9a-f]{16}$", description="The 8-byte Eddystone-EID, lowercase hex")
    observed_at: ApiDatetime
    rssi: float | None = Field(default=None, ge=-127, le=20, description="Smoothed RSSI, dBm")
    distance_m: float | None = Field(default=None, ge=0, le=500)
    dwell_s: float = Field(default=0, ge=0, le=86_400)


class _DocumentedAsEventIn:
    """Validates nothing (an item stays a dict, checked later on its own) but is documented as an EventIn.

    The JSON schema comes from pydantic's generator, so EventIn and the enums it uses become components that
    every `$ref` finds; a schema embedded by hand (`model_json_schema()`) kept `#/$defs/...` refs that the
    OpenAPI document does not have.
    """

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(EventIn.__pydantic_core_schema__)


class EventBatchIn(BaseModel):
    """A batch; each item is validated on its own so that one bad item does not lose the others."""

    model_config = ConfigDict(extra="forbid")

    events: list[Annotated[dict[str, Any], _DocumentedAsEventIn]] = Field(min_length=1, max_length=MAX_BATCH)


class FieldError(BaseModel):
    field: str
    message: str


class RejectedEvent(BaseModel):
    index: int
    id: str | None
    errors: list[FieldError]


class BatchResult(BaseModel):
    """Delete every event from the outbox except the rejected ones; set those aside, do not resend."""

    accepted: list[str] = Field(description="Ids stored now, or valid but not about an opted-in phone")
    duplicates: list[str] = Field(description="Ids stored by an earlier delivery of the same event")
    rejected: list[RejectedEvent] = Field(description="Invalid items, with the fields at fault")
    prompts: int = Field(description="Prompts decided because of this batch")


class BatchProblem(ProblemDetails):
    """A 422: some items were rejected (the batch's lists are there too), or the batch as a whole was invalid
    (then only `errors`)."""

    accepted: list[str] | None = None
    duplicates: list[str] | None = None
    rejected: list[RejectedEvent] | None = None
    prompts: int | None = None
