"""/admin/api/v1/organisations/{org_id}/test-devices and .../campaigns/{campaign_id}/test-send."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Self

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.campaigns import trial_send
from server.campaigns.models import PairedDevice

router = APIRouter(prefix="/organisations/{org_id}", tags=["admin: test sends"])


class PairingCodePublic(BaseModel):
    code: str = Field(description="Shown this once: the test phone enters it in the app")
    expires_at: datetime


class PairedDeviceListItem(BaseModel):
    id: int
    organisation_id: int
    label: str
    paired_at: datetime


class PairedDevicesPublic(BaseModel):
    items: list[PairedDeviceListItem]


class TrialSendCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_device_id: int = Field(ge=1)
    variant_id: int | None = Field(default=None, ge=1)
    language: Literal["de", "en"] | None = Field(
        default=None, description="Without variant_id: the variant in this language (default: the phone's)"
    )

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        if self.variant_id is not None and self.language is not None:
            raise ValueError("name a variant_id or a language, not both")
        return self


class TrialSendPublic(BaseModel):
    decision_id: int
    variant_id: int
    language: str
    channels: list[str] = Field(description="Where it goes: the inbox and each of the phone's push channels")


def _public(device: PairedDevice) -> PairedDeviceListItem:
    return PairedDeviceListItem(
        id=device.id, organisation_id=device.organisation_id, label=device.label, paired_at=device.paired_at
    )


@router.post(
    "/test-devices/pairing-codes",
    status_code=201,
    response_model=PairingCodePublic,
    operation_id="admin_create_test_device_pairing_code",
)
def create_pairing_code(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PairingCodePublic:
    """A one-time code, valid 15 minutes, that makes the phone entering it a test device (editors)."""
    issued = trial_send.issue_code(session, principal, org_id, runtime.clock())
    return PairingCodePublic(code=issued.code, expires_at=issued.expires_at)


@router.get("/test-devices", response_model=PairedDevicesPublic, operation_id="admin_list_test_devices")
def list_test_devices(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep
) -> PairedDevicesPublic:
    """The phones that paired themselves as this organisation's test devices."""
    return PairedDevicesPublic(items=[_public(d) for d in trial_send.devices(session, principal, org_id)])


@router.delete("/test-devices/{test_device_id}", status_code=204, operation_id="admin_remove_test_device")
def remove_test_device(
    org_id: OrganisationId,
    test_device_id: int,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The phone gets no more test sends (editors)."""
    trial_send.remove(session, principal, org_id, test_device_id, runtime.clock())
    return Response(status_code=204)


@router.post(
    "/campaigns/{campaign_id}/test-send",
    status_code=201,
    response_model=TrialSendPublic,
    operation_id="admin_test_send_campaign",
)
def send_test(
    org_id: OrganisationId,
    campaign_id: int,
    body: TrialSendCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> TrialSendPublic:
    """The campaign's variant to one test device, as a real prompt would go (inbox and push) but counted by
    no cap and no statistic (editors)."""
    sent = trial_send.send(
        session,
        principal,
        org_id,
        campaign_id,
        body.test_device_id,
        (body.variant_id, body.language),
        runtime.clock(),
        timedelta(seconds=runtime.settings.prompt_ttl_seconds),
    )
    return TrialSendPublic(
        decision_id=sent.decision.id,
        variant_id=sent.variant.id,
        language=sent.variant.language,
        channels=[d.channel_kind for d in sent.deliveries],
    )
