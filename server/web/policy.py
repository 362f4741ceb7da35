"""Explain: why someone would (or would not) be asked at a site now, in plain words from the policy's
reason codes; the person is named by the organisation's pseudonym at most, never identified."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.errors import NotFound
from server.core.paging import PageParams
from server.policy.explain import explain_for_admin
from server.sites import admin_service as sites
from server.web.i18n import N_
from server.web.labels import CHECKS, REASONS, label
from server.web.pages import PageRoute, VisitDep, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")
NOBODY: Final = N_(
    "Nobody by that pseudonym was seen at this organisation's sites. Copy one from a campaign's list."
)


@router.get("/admin/explain", response_class=HTMLResponse)
def explain(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """Choose a site (and a dwell, and a pseudonym if you have one): the decision, step by step."""
    site_rows, _ = sites.list_sites(visit.principal, session, ALL)
    site_id, person = visit.query("site_id"), visit.query("person", 64) or None
    dwell = visit.query("dwell_s", 6) or str(const.DEFAULT_MIN_DWELL_S)
    errors: dict[str, str] = {}
    result = None
    if not dwell.isdigit() or int(dwell) > 86_400:
        errors["dwell_s"] = visit.t(N_("Enter a whole number of seconds."))
    elif site_id.isdigit():
        secret = runtime.settings.secret_key.get_secret_value()
        try:
            site, decision, alias = explain_for_admin(
                session, visit.principal, int(site_id), person, float(dwell), runtime.clock(), secret
            )
        except NotFound:
            if person is None or not any(str(s.id) == site_id for s in site_rows):
                raise
            errors["person"] = visit.t(NOBODY)
        else:
            result = {
                "site": site,
                "prompted": decision.prompted,
                "reason": label(visit.lang, REASONS, decision.reason),
                "checks": [(c.passed, label(visit.lang, CHECKS, c.name), c.detail) for c in decision.checks],
                "alias": alias,
                "at": runtime.clock(),
            }
    context = {
        "sites": [(str(s.id), s.name) for s in site_rows],
        "site_id": site_id,
        "person": person or "",
        "dwell": dwell,
        "errors": errors,
        "result": result,
    }
    return page(visit, "explain.html", "explain", context, session, status=422 if errors else 200)
