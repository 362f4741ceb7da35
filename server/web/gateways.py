"""Gateways: add one and get its one-time enrolment code with the commands for the Pi; health from its
heartbeats, with a plain "needs attention"; revoke; enrol again with a new code."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.const import Role
from server.core.paging import PageParams
from server.sites import admin_service as service
from server.sites.admin_schemas import GatewayCreate
from server.sites.models import Gateway
from server.sites.service import IssuedCode
from server.web.forms import parse
from server.web.labels import NEEDS_ATTENTION
from server.web.pages import PageRoute, Visit, VisitDep, chosen_organisation, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIST: Final = "/admin/gateways"
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")


def rows_with_health(gateways: list[Gateway], runtime: RuntimeDep) -> list[tuple[Gateway, str]]:
    now = runtime.clock()
    return [(g, service.health(g, now)) for g in gateways]


@router.get(LIST, response_class=HTMLResponse)
def gateways(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """Every gateway of the person's organisations (or of one), those that need attention first."""
    chosen = chosen_organisation(visit, session)
    revoked = visit.query("revoked") == "1"
    rows, total = service.list_gateways(visit.principal, session, ALL, None, chosen, revoked)
    found = rows_with_health(rows, runtime)
    found.sort(key=lambda pair: (pair[1] not in NEEDS_ATTENTION, pair[0].name))
    sites, _ = service.list_sites(visit.principal, session, ALL, chosen)
    context = {
        "rows": found,
        "total": total,
        "site_names": {s.id: s.name for s in sites},
        "organisation_id": chosen,
        "revoked": revoked,
        "attention": NEEDS_ATTENTION,
        "can_add": any(visit.can(s.organisation_id) for s in sites),
    }
    return page(visit, "gateways.html", "gateways", context, session)


def _editable_sites(visit: Visit, session: Session, org_id: int | None) -> list[tuple[int, str]]:
    rows, _ = service.list_sites(visit.principal, session, ALL, org_id)
    return [(s.id, s.name) for s in rows if visit.can(s.organisation_id, Role.EDITOR)]


def _new_page(
    visit: Visit, session: Session, form: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    org_id = visit.query("organisation_id")
    sites = _editable_sites(visit, session, int(org_id) if org_id.isdigit() else None)
    context = {"form": form, "errors": errors, "sites": sites}
    return page(visit, "gateway_new.html", "gateways", context, session, status=status)


@router.get(LIST + "/new", response_class=HTMLResponse)
def new_gateway(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The form: which site, and a name to tell it apart."""
    chosen_organisation(visit, session)
    if visit.query("site_id").isdigit():
        service.visible_site(visit.principal, session, int(visit.query("site_id")))
    form = {"site_id": visit.query("site_id"), "name": ""}
    return _new_page(visit, session, form, {})


def _enrolment(
    visit: Visit, session: Session, runtime: RuntimeDep, issued: IssuedCode, status: int
) -> HTMLResponse:
    site = service.visible_site(visit.principal, session, issued.gateway.site_id)
    context: dict[str, Any] = {
        "gateway": issued.gateway,
        "site": site,
        "code": issued.code,
        "expires_at": issued.expires_at,
        "enrol": "sudo -u beacon-agent " + service.enrol_command(runtime.settings.public_url, issued.code),
    }
    return page(visit, "gateway_enrol.html", "gateways", context, session, status=status)


@router.post(LIST, response_class=HTMLResponse)
def create_gateway(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """A gateway at a site and its one-time enrolment code, on the page that follows, once (editors)."""
    form = {"site_id": visit.field("site_id"), "name": visit.field("name")}
    if form["site_id"].isdigit():
        site = service.visible_site(visit.principal, session, int(form["site_id"]))
        visit.principal.require(site.organisation_id, Role.EDITOR)
    body = parse(GatewayCreate, form, visit.lang)
    if isinstance(body, dict):
        return _new_page(visit, session, form, body, 422)
    issued = service.create_gateway(session, visit.principal, body.site_id, body.name, runtime.clock())
    return _enrolment(visit, session, runtime, issued, 201)


@router.get(LIST + "/{gateway_id}", response_class=HTMLResponse)
def gateway(gateway_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """One gateway's health: its last heartbeat, plainly."""
    found = service.visible_gateway(visit.principal, session, gateway_id)
    site = service.visible_site(visit.principal, session, found.site_id)
    beat = found.last_heartbeat or {}
    context = {
        "gateway": found,
        "site": site,
        "health": service.health(found, runtime.clock()),
        "beat": beat,
        "attention": NEEDS_ATTENTION,
        "editor": visit.can(found.organisation_id, Role.EDITOR),
    }
    return page(visit, "gateway.html", "gateways", context, session)


@router.post(LIST + "/{gateway_id}/revoke")
def revoke(gateway_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The gateway's token is refused from now on (a lost or stolen Pi)."""
    service.revoke_gateway(session, visit.principal, gateway_id, runtime.clock())
    return done(f"{LIST}/{gateway_id}", "revoked")


@router.post(LIST + "/{gateway_id}/rotate", response_class=HTMLResponse)
def rotate(gateway_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """A new one-time code for the same gateway: enrolling with it replaces the old token."""
    issued = service.rotate_gateway(session, visit.principal, gateway_id, runtime.clock())
    return _enrolment(visit, session, runtime, issued, 201)
