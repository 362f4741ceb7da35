"""POST /mobile/v1/me/test-device: this phone, by its own act, becomes a charity's test device."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.api.ratelimit import PairingRateLimit
from server.campaigns import trial_send
from server.core.text import NOT_BLANK, not_blank

router = APIRouter()


class PairingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=8, max_length=20, description="The code the charity's editor was shown")
    label: str = Field(default="Test phone", min_length=1, max_length=60, json_schema_extra=NOT_BLANK)

    _trimmed = field_validator("label")(not_blank)


class PairedDevicePublic(BaseModel):
    id: int
    organisation: str
    paired_at: datetime


@router.post(
    "/me/test-device",
    status_code=201,
    response_model=PairedDevicePublic,
    operation_id="mobile_pair_test_device",
    responses={
        422: {"description": "The code is unknown, used or expired (invalid_pairing_code)"},
        429: {"description": "Too many pairing attempts from this device; see Retry-After"},
    },
)
def pair_test_device(
    body: PairingCreate,
    subscriber: CurrentDevice,
    session: SessionDep,
    runtime: RuntimeDep,
    _limit: PairingRateLimit,
) -> PairedDevicePublic:
    """Receive this charity's test sends on this phone: only a code its editor was given pairs it."""
    device = trial_send.pair(session, subscriber, body.code, body.label, runtime.clock())
    return PairedDevicePublic(
        id=device.id,
        organisation=trial_send.organisation_name(session, device.organisation_id),
        paired_at=device.paired_at,
    )
