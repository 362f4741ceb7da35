"""Sites: address, time zone, language and quiet hours; the site's own beacons (last seen, battery)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final
from zoneinfo import available_timezones

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.const import Role
from server.core.errors import Conflict, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.sites import admin_service as service
from server.sites.admin_schemas import BeaconCreate, SiteCreate, SiteUpdate
from server.sites.models import Site
from server.tenancy import service as tenancy
from server.web.forms import STALE, blank_to_none, parse, refusal_errors
from server.web.i18n import N_
from server.web.labels import LANGUAGE_NAMES
from server.web.pages import PageRoute, Visit, VisitDep, chosen_organisation, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIST: Final = "/admin/sites"
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")
SITE_FIELDS: Final = ("name", "address", "timezone", "language", "quiet_start", "quiet_end")
REQUIRED: Final = ("name", "language", "quiet_start", "quiet_end")
MESSAGES: Final = {
    "quiet_end": N_("Quiet hours need a start and an end that differ, such as 21:00 to 08:00."),
    "identifier": N_(
        "Not a valid identifier: iBeacon is uuid/major/minor, AltBeacon 32 hex digits/major/minor, "
        "Eddystone-UID 20 hex digits/12 hex digits."
    ),
}


@lru_cache(maxsize=1)
def zones() -> list[str]:
    """The IANA zones a person would pick (no "Etc/GMT+3" or legacy aliases)."""
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def editable_organisations(visit: Visit, session: Session) -> list[tuple[int, str]]:
    """The organisations where the person may add things (editor or owner), as (id, name)."""
    rows, _total = tenancy.list_organisations(visit.principal, session, ALL)
    return [(o.id, o.name) for o in rows if visit.can(o.id, Role.EDITOR)]


@router.get(LIST, response_class=HTMLResponse)
def sites(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The sites of the person's organisations (or of one)."""
    chosen = chosen_organisation(visit, session)
    offset = visit.offset()
    rows, total = service.list_sites(
        visit.principal, session, PageParams(limit=50, offset=offset, sort="name"), chosen
    )
    names = {o.id: o.name for o in tenancy.list_organisations(visit.principal, session, ALL)[0]}
    context = {
        "rows": rows,
        "total": total,
        "offset": offset,
        "names": names,
        "organisation_id": chosen,
        "can_add": bool(editable_organisations(visit, session)),
    }
    return page(visit, "sites.html", "sites", context, session)


def _form_page(
    visit: Visit,
    session: Session,
    *,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "form": form,
        "errors": errors or {},
        "organisations": editable_organisations(visit, session),
        "zones": [(z, z) for z in zones()],
        "languages": [(k, visit.t(v)) for k, v in LANGUAGE_NAMES.items()],
    }
    return page(visit, "site_new.html", "sites", context, session, status=status)


@router.get(LIST + "/new", response_class=HTMLResponse)
def new_site(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The form for a new site."""
    chosen_organisation(visit, session)
    form = {
        "organisation_id": visit.query("organisation_id"),
        "name": "",
        "address": "",
        "timezone": "Europe/Berlin",
        "language": visit.lang,
        "quiet_start": const.DEFAULT_QUIET_START,
        "quiet_end": const.DEFAULT_QUIET_END,
    }
    return _form_page(visit, session, form=form)


@router.post(LIST, response_class=HTMLResponse)
def create_site(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Add a site (editors)."""
    form = {k: visit.field(k) for k in ("organisation_id", *SITE_FIELDS)}
    if form["organisation_id"].isdigit():
        visit.principal.require(int(form["organisation_id"]), Role.EDITOR)
    body = parse(SiteCreate, blank_to_none(form, REQUIRED), visit.lang)
    if isinstance(body, dict):
        return _form_page(visit, session, form=form, errors=body, status=422)
    try:
        site = service.create_site(session, visit.principal, body, runtime.clock())
    except RuleViolation as error:
        errors = refusal_errors(visit.lang, error, MESSAGES)
        return _form_page(visit, session, form=form, errors=errors, status=422)
    return done(f"{LIST}/{site.id}", "created")


def _values(site: Site) -> dict[str, str]:
    return {k: "" if getattr(site, k) is None else str(getattr(site, k)) for k in SITE_FIELDS}


def _site_page(
    visit: Visit,
    session: Session,
    runtime: RuntimeDep,
    site_id: int,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    current: dict[str, str] | None = None,
    beacon_form: dict[str, str] | None = None,
) -> HTMLResponse:
    site = service.visible_site(visit.principal, session, site_id)
    org = tenancy.visible_organisation(visit.principal, session, site.organisation_id)
    gateways, _total = service.list_gateways(visit.principal, session, ALL, site_id=site.id)
    now = runtime.clock()
    context: dict[str, Any] = {
        "site": site,
        "org": org,
        "form": form or _values(site),
        "errors": errors or {},
        "current": current or {},
        "editor": visit.can(site.organisation_id, Role.EDITOR),
        "beacons": service.beacons(visit.principal, session, site.id),
        "gateways": [(g, service.health(g, now)) for g in gateways],
        "zones": [(z, z) for z in zones()],
        "languages": [(k, visit.t(v)) for k, v in LANGUAGE_NAMES.items()],
        "kinds": [("ibeacon", "iBeacon"), ("altbeacon", "AltBeacon"), ("eddystone_uid", "Eddystone-UID")],
        "beacon_form": beacon_form or {"kind": "ibeacon", "identifier": "", "label": ""},
        "public_url": f"{runtime.settings.public_url.rstrip('/')}/site/{site.id}",
    }
    return page(visit, "site.html", "sites", context, session, status=status)


@router.get(LIST + "/{site_id}", response_class=HTMLResponse)
def site(site_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """One site: its settings, its beacons and gateways, and its window sign."""
    return _site_page(visit, session, runtime, site_id)


@router.post(LIST + "/{site_id}", response_class=HTMLResponse)
def update_site(site_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save the site's settings (editors); a stale form shows what someone else saved meanwhile."""
    site = service.visible_site(visit.principal, session, site_id)
    visit.principal.require(site.organisation_id, Role.EDITOR)
    form = {k: visit.field(k) for k in SITE_FIELDS}
    body = parse(SiteUpdate, blank_to_none(form, REQUIRED), visit.lang)
    if isinstance(body, dict):
        return _site_page(visit, session, runtime, site_id, status=422, form=form, errors=body)
    try:
        service.update_site(session, visit.principal, site_id, body, visit.if_match(), runtime.clock())
    except PreconditionFailed:
        session.rollback()
        now = _values(service.visible_site(visit.principal, session, site_id))
        current = {k: now[k] for k in SITE_FIELDS if now[k] != form[k]}
        errors = {"form": visit.t(STALE)}
        return _site_page(
            visit, session, runtime, site_id, status=409, form=form, errors=errors, current=current
        )
    except RuleViolation as error:
        errors = refusal_errors(visit.lang, error, MESSAGES)
        return _site_page(visit, session, runtime, site_id, status=422, form=form, errors=errors)
    return done(f"{LIST}/{site_id}", "saved")


@router.post(LIST + "/{site_id}/beacons", response_class=HTMLResponse)
def add_beacon(site_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Register a beacon the charity placed at the site (editors)."""
    site = service.visible_site(visit.principal, session, site_id)
    visit.principal.require(site.organisation_id, Role.EDITOR)
    form = {k: visit.field(k) for k in ("kind", "identifier", "label")}
    body = parse(BeaconCreate, blank_to_none(form), visit.lang)
    if not isinstance(body, dict):
        try:
            service.add_beacon(session, visit.principal, site_id, body, runtime.clock())
        except RuleViolation as error:
            body = refusal_errors(visit.lang, error, MESSAGES)
        except Conflict:
            body = {"identifier": visit.t(N_("This site already has that beacon."))}
        else:
            return done(f"{LIST}/{site_id}", "created")
    return _site_page(visit, session, runtime, site_id, status=422, errors=body, beacon_form=form)


@router.post(LIST + "/{site_id}/beacons/{beacon_id}/remove")
def remove_beacon(
    site_id: int, beacon_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Forget a beacon (editors)."""
    service.remove_beacon(session, visit.principal, site_id, beacon_id, runtime.clock())
    return done(f"{LIST}/{site_id}", "removed")
