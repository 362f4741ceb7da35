"""/admin/api/v1: sites, their own beacons, and gateways (enrolment codes, health, revoke, rotate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.api.etag import IfMatch, set_etag
from server.api.paging import Page, PageDep
from server.sites import admin_service as service
from server.sites.admin_schemas import (
    BeaconCreate,
    BeaconPublic,
    GatewayCreate,
    GatewayEnrolment,
    GatewayPublic,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from server.sites.service import IssuedCode

router = APIRouter()
OrgFilter = Annotated[int | None, Query(description="Only this organisation's")]


@router.get("/sites", response_model=Page[SitePublic], operation_id="admin_list_sites", tags=["admin: sites"])
def list_sites(
    principal: CurrentAdmin,
    session: SessionDep,
    page: PageDep,
    organisation_id: OrgFilter = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name")] = None,
) -> Page[SitePublic]:
    """Sites of the caller's organisations."""
    rows, total = service.list_sites(principal, session, page, organisation_id, q)
    return Page(
        items=[SitePublic.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/sites",
    status_code=201,
    response_model=SitePublic,
    operation_id="admin_create_site",
    tags=["admin: sites"],
)
def create_site(
    body: SiteCreate, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep, response: Response
) -> SitePublic:
    """Add a site (editors); without a time zone it never prompts."""
    site = service.create_site(session, principal, body, runtime.clock())
    set_etag(response, site.version)
    return SitePublic.model_validate(site)


@router.get(
    "/sites/{site_id}", response_model=SitePublic, operation_id="admin_get_site", tags=["admin: sites"]
)
def get_site(site_id: int, principal: CurrentAdmin, session: SessionDep, response: Response) -> SitePublic:
    """One site, with its ETag."""
    site = service.visible_site(principal, session, site_id)
    set_etag(response, site.version)
    return SitePublic.model_validate(site)


@router.patch(
    "/sites/{site_id}", response_model=SitePublic, operation_id="admin_update_site", tags=["admin: sites"]
)
def update_site(
    site_id: int,
    body: SiteUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> SitePublic:
    """Change address, time zone, language or quiet hours (editors); needs If-Match."""
    site = service.update_site(session, principal, site_id, body, if_match, runtime.clock())
    set_etag(response, site.version)
    return SitePublic.model_validate(site)


@router.get(
    "/sites/{site_id}/beacons",
    response_model=list[BeaconPublic],
    operation_id="admin_list_beacons",
    tags=["admin: sites"],
)
def list_beacons(site_id: int, principal: CurrentAdmin, session: SessionDep) -> list[BeaconPublic]:
    """The site's own beacons, with when a gateway last saw each and its battery."""
    return [BeaconPublic.model_validate(b) for b in service.beacons(principal, session, site_id)]


@router.post(
    "/sites/{site_id}/beacons",
    status_code=201,
    response_model=BeaconPublic,
    operation_id="admin_create_beacon",
    responses={409: {"description": "The site already has that beacon (conflict)"}},
    tags=["admin: sites"],
)
def create_beacon(
    site_id: int, body: BeaconCreate, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> BeaconPublic:
    """Register a beacon the charity placed; the site's gateways start watching it."""
    return BeaconPublic.model_validate(service.add_beacon(session, principal, site_id, body, runtime.clock()))


@router.delete(
    "/sites/{site_id}/beacons/{beacon_id}",
    status_code=204,
    operation_id="admin_delete_beacon",
    tags=["admin: sites"],
)
def delete_beacon(
    site_id: int, beacon_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Forget a beacon (editors)."""
    service.remove_beacon(session, principal, site_id, beacon_id, runtime.clock())
    return Response(status_code=204)


def _enrolment(issued: IssuedCode, runtime: RuntimeDep) -> GatewayEnrolment:
    return GatewayEnrolment(
        gateway=service.gateway_public(issued.gateway, runtime.clock()),
        code=issued.code,
        expires_at=issued.expires_at,
        command=service.enrol_command(runtime.settings.public_url, issued.code),
    )


@router.get(
    "/gateways",
    response_model=Page[GatewayPublic],
    operation_id="admin_list_gateways",
    tags=["admin: gateways"],
)
def list_gateways(
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    page: PageDep,
    organisation_id: OrgFilter = None,
    site_id: Annotated[int | None, Query(description="Only this site's")] = None,
    include_revoked: bool = False,
) -> Page[GatewayPublic]:
    """Gateways with their health from heartbeats (ok, stale, silent, pending, revoked)."""
    rows, total = service.list_gateways(principal, session, page, site_id, organisation_id, include_revoked)
    now = runtime.clock()
    return Page(
        items=[service.gateway_public(g, now) for g in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/gateways",
    status_code=201,
    response_model=GatewayEnrolment,
    operation_id="admin_create_gateway",
    tags=["admin: gateways"],
)
def create_gateway(
    body: GatewayCreate, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> GatewayEnrolment:
    """A gateway at a site, its one-time enrolment code (shown once) and the command to run on the Pi."""
    return _enrolment(
        service.create_gateway(session, principal, body.site_id, body.name, runtime.clock()), runtime
    )


@router.get(
    "/gateways/{gateway_id}",
    response_model=GatewayPublic,
    operation_id="admin_get_gateway",
    tags=["admin: gateways"],
)
def get_gateway(
    gateway_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> GatewayPublic:
    """One gateway with its last heartbeat."""
    return service.gateway_public(service.visible_gateway(principal, session, gateway_id), runtime.clock())


@router.post(
    "/gateways/{gateway_id}/revoke",
    response_model=GatewayPublic,
    operation_id="admin_revoke_gateway",
    tags=["admin: gateways"],
)
def revoke_gateway(
    gateway_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> GatewayPublic:
    """Stop a gateway (lost or stolen Pi): its token is refused from now on."""
    gateway = service.revoke_gateway(session, principal, gateway_id, runtime.clock())
    return service.gateway_public(gateway, runtime.clock())


@router.post(
    "/gateways/{gateway_id}/rotate",
    response_model=GatewayEnrolment,
    operation_id="admin_rotate_gateway",
    tags=["admin: gateways"],
)
def rotate_gateway(
    gateway_id: int, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> GatewayEnrolment:
    """Issue a new one-time code; enrolling with it replaces the gateway's token."""
    return _enrolment(service.rotate_gateway(session, principal, gateway_id, runtime.clock()), runtime)
