"""An organisation's open data: which sites publish their daily counts (k-anonymised), under which licence
and title, and the public addresses (CSV and JSON) to hand out."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.const import Role
from server.core.errors import NotFound, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.impact import open_data
from server.impact.schemas import OpenDataSettingsUpdate
from server.sites import admin_service as sites
from server.sites.admin_schemas import SiteUpdate
from server.tenancy import service as tenancy
from server.web.forms import parse, refusal_errors
from server.web.i18n import N_
from server.web.pages import PageRoute, Visit, VisitDep, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE: Final = "/admin/organisations/{org_id}/open-data"
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")
CHANGED: Final = N_(
    "Someone else changed this site meanwhile. Nothing was changed; please look and try again."
)


def _page(
    visit: Visit,
    session: Session,
    runtime: RuntimeDep,
    org_id: int,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    settings = open_data.settings_of(session, visit.principal, org_id, runtime.settings.public_url)
    site_rows, _ = sites.list_sites(visit.principal, session, ALL, org_id)
    licences = list(open_data.LICENCE_URLS)
    if settings.licence not in licences:
        licences.append(settings.licence)
    context: dict[str, Any] = {
        "org": org,
        "settings": settings,
        "sites": site_rows,
        "editor": visit.can(org_id, Role.EDITOR),
        "licences": [(k, k) for k in licences],
        "licence_urls": open_data.LICENCE_URLS,
        "form": form or {"licence": settings.licence, "title": settings.title or ""},
        "errors": errors or {},
    }
    return page(visit, "open_data.html", "organisations", context, session, status=status)


@router.get(PAGE, response_class=HTMLResponse)
def settings(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """The open-data settings and the public addresses."""
    return _page(visit, session, runtime, org_id)


@router.post(PAGE, response_class=HTMLResponse)
def update(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save the licence and title (editors)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    visit.principal.require(org_id, Role.EDITOR)
    form = {"licence": visit.field("licence"), "title": visit.field("title")}
    body = parse(OpenDataSettingsUpdate, form, visit.lang)
    if not isinstance(body, dict):
        try:
            open_data.update_settings(
                session, visit.principal, org_id, body, runtime.settings.public_url, runtime.clock()
            )
        except RuleViolation as error:
            body = refusal_errors(visit.lang, error, {})
        else:
            return done(PAGE.format(org_id=org_id), "saved")
    return _page(visit, session, runtime, org_id, status=422, form=form, errors=body)


@router.post(PAGE + "/sites/{site_id}", response_class=HTMLResponse)
def publish(org_id: int, site_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Start or stop publishing one site's counts (editors)."""
    site = sites.visible_site(visit.principal, session, site_id)
    if site.organisation_id != org_id:
        raise NotFound("No such site in this organisation.")
    body = SiteUpdate(open_data=visit.field("publish") == "yes")
    try:
        sites.update_site(session, visit.principal, site_id, body, visit.if_match(), runtime.clock())
    except PreconditionFailed:
        session.rollback()
        return _page(visit, session, runtime, org_id, status=409, errors={"form": visit.t(CHANGED)})
    return done(PAGE.format(org_id=org_id), "saved")
