"""Test phones (paired by a one-time code the phone enters) and test sends of a campaign to them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.campaigns import service as campaigns
from server.campaigns import trial_send
from server.core.const import LANGUAGES, Role
from server.core.errors import NotFound
from server.tenancy import service as tenancy
from server.web.campaigns import _detail as campaign_page
from server.web.i18n import N_
from server.web.pages import PageRoute, Visit, VisitDep, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DEVICES: Final = "/admin/organisations/{org_id}/test-devices"


def _devices_page(
    visit: Visit, session: Session, org_id: int, *, status: int = 200, issued: Any = None
) -> HTMLResponse:
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    context = {
        "org": org,
        "devices": trial_send.devices(session, visit.principal, org_id),
        "editor": visit.can(org_id, Role.EDITOR),
        "issued": issued,
    }
    return page(visit, "test_devices.html", "organisations", context, session, status=status)


@router.get(DEVICES, response_class=HTMLResponse)
def test_devices(org_id: int, visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The organisation's test phones, and how to pair another."""
    return _devices_page(visit, session, org_id)


@router.post(DEVICES + "/pairing-code", response_class=HTMLResponse)
def pairing_code(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """A one-time code for the app on the phone to pair, shown once (editors)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    issued = trial_send.issue_code(session, visit.principal, org_id, runtime.clock())
    return _devices_page(visit, session, org_id, status=201, issued=issued)


@router.post(DEVICES + "/{device_id}/remove")
def remove_device(
    org_id: int, device_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The phone gets no more test sends (editors)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    trial_send.remove(session, visit.principal, org_id, device_id, runtime.clock())
    return done(DEVICES.format(org_id=org_id), "removed")


@router.post("/admin/campaigns/{campaign_id}/test-send", response_class=HTMLResponse)
def send_test(campaign_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The campaign's text to one test phone, through the outbox like a real prompt (editors)."""
    campaign = campaigns.visible_campaign(visit.principal, session, campaign_id)
    visit.principal.require(campaign.organisation_id, Role.EDITOR)
    device = visit.field("test_device_id")
    language = visit.field("language")
    if not device.isdigit():
        errors = {"test_device_id": visit.t(N_("Choose a test phone."))}
        return campaign_page(visit, session, runtime, campaign_id, status=422, errors=errors)
    try:
        trial_send.send(
            session,
            visit.principal,
            campaign.organisation_id,
            campaign_id,
            int(device),
            (None, language if language in LANGUAGES else None),
            runtime.clock(),
            timedelta(seconds=runtime.settings.prompt_ttl_seconds),
        )
    except NotFound:
        errors = {"language": visit.t(N_("This campaign has no text in that language."))}
        return campaign_page(visit, session, runtime, campaign_id, status=422, errors=errors)
    return done(f"/admin/campaigns/{campaign_id}", "sent")
