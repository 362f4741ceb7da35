"""For the platform operator: the platform's settings (maxima, minimum dwell, walk-by), admin users (disable,
enable) and the health of every charity's gateways."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.accounts import service as accounts
from server.api.deps import RuntimeDep, SessionDep
from server.core import const
from server.core.errors import Conflict, NahbarError, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.policy.schemas import PolicyProposal, SimulationCreate
from server.policy.simulation import simulate_platform
from server.sites import admin_service as sites
from server.tenancy import service as tenancy
from server.tenancy.models import PlatformSettings
from server.tenancy.schemas import PlatformSettingsUpdate
from server.web import whatif
from server.web.forms import STALE, parse, refusal_errors
from server.web.i18n import N_
from server.web.labels import NEEDS_ATTENTION
from server.web.pages import PageRoute, Visit, VisitDep, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
HOME: Final = "/admin/platform"
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort=None)
FIELDS: Final = (
    "max_prompts_per_day",
    "max_prompts_per_week",
    "max_prompts_per_month",
    "min_org_cooldown_days",
    "retention_days",
    "min_dwell_s",
    "quiet_start",
    "quiet_end",
)
NAMES: Final = {
    "max_prompts_per_day": N_("Prompts per person and day, at most"),
    "max_prompts_per_week": N_("Prompts per person and week, at most"),
    "max_prompts_per_month": N_("Prompts per person and month, at most"),
    "min_org_cooldown_days": N_("Days between two prompts from one charity, at least"),
    "retention_days": N_("Days raw sightings are kept"),
    "min_dwell_s": N_("Minimum dwell before a prompt (seconds)"),
    "allow_walk_by": N_("Walk-by campaigns allowed"),
    "quiet_start": N_("Quiet from"),
    "quiet_end": N_("Quiet until"),
}
QUIET_HOURS_DIFFER: Final = N_("Quiet hours need a start and an end that differ, such as 21:00 to 08:00.")
# The settings' names in the simulator, for those a replay shows the effect of.
SIMULATED: Final = {
    "max_prompts_per_day": "max_per_day",
    "max_prompts_per_week": "max_per_week",
    "max_prompts_per_month": "max_per_month",
    "min_org_cooldown_days": "org_cooldown_days",
    "min_dwell_s": "min_dwell_s",
    "allow_walk_by": "allow_walk_by",
    "quiet_start": "quiet_start",
    "quiet_end": "quiet_end",
}


def _values(row: PlatformSettings) -> dict[str, str]:
    values = {k: str(getattr(row, k)) for k in FIELDS}
    return values | {"allow_walk_by": "on" if row.allow_walk_by else ""}


def _settings_page(
    visit: Visit,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    current: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    row = tenancy.platform_settings(session)
    context: dict[str, Any] = {
        "row": row,
        "form": form or _values(row),
        "errors": errors or {},
        "current": current or {},
        "names": {k: visit.t(v) for k, v in NAMES.items()},
    }
    return page(visit, "platform.html", "platform", context, session, status=status)


@router.get(HOME, response_class=HTMLResponse)
def platform(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The platform's settings (operator)."""
    visit.principal.require_operator()
    return _settings_page(visit, session)


@router.post(HOME, response_class=HTMLResponse)
def update_platform(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save the settings (operator), once the comparison of changed limits was shown and confirmed."""
    visit.principal.require_operator()
    form = {k: visit.field(k) for k in FIELDS} | {"allow_walk_by": visit.field("allow_walk_by")}
    if whatif.going_back(visit):
        return _settings_page(visit, session, form=form)
    values: dict[str, Any] = {k: form[k] for k in FIELDS} | {"allow_walk_by": form["allow_walk_by"] == "on"}
    body = parse(PlatformSettingsUpdate, values, visit.lang)
    if isinstance(body, dict):
        return _settings_page(visit, session, form=form, errors=body, status=422)
    if form["quiet_start"] == form["quiet_end"]:  # the service refuses it too; before the comparison
        errors = {"quiet_end": visit.t(QUIET_HOURS_DIFFER)}
        return _settings_page(visit, session, form=form, errors=errors, status=422)
    row = tenancy.platform_settings(session)
    changes = body.model_dump(exclude_unset=True)
    changed = [k for k in SIMULATED if k in changes and changes[k] != getattr(row, k)]
    if changed and not whatif.confirmed(visit):
        proposal = PolicyProposal(**{SIMULATED[k]: changes[k] for k in changed})
        try:
            result = simulate_platform(
                session,
                visit.principal,
                SimulationCreate(days=whatif.DAYS, policy=proposal),
                runtime.clock(),
                runtime.settings.prompt_ttl_seconds,
            )
        except NahbarError:
            result = None
        if result is not None:
            rows = [(visit.t(NAMES[k]), str(getattr(row, k)), str(changes[k])) for k in changed]
            title = visit.t(N_("You change the limits of every charity on the platform."))
            return whatif.confirmation(
                visit, session, "platform", result, action=HOME, title=title, changes=rows
            )
    try:
        tenancy.update_platform(session, visit.principal, body, visit.if_match(), runtime.clock())
    except PreconditionFailed:
        session.rollback()
        now = _values(tenancy.platform_settings(session))
        current = {k: now[k] for k in now if now[k] != form.get(k, "")}
        return _settings_page(
            visit, session, form=form, errors={"form": visit.t(STALE)}, current=current, status=409
        )
    except RuleViolation as error:
        session.rollback()
        errors = refusal_errors(visit.lang, error, {"quiet_end": QUIET_HOURS_DIFFER})
        return _settings_page(visit, session, form=form, errors=errors, status=422)
    return done(HOME, "saved")


@router.get(HOME + "/users", response_class=HTMLResponse)
def users(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """Every admin account, with its memberships (operator)."""
    q = visit.query("q") or None
    offset = visit.offset()
    rows, total, roles = accounts.list_users(
        session, visit.principal, PageParams(limit=50, offset=offset, sort=None), q, None
    )
    orgs, _ = tenancy.list_organisations(visit.principal, session, ALL)
    context = {
        "rows": rows,
        "total": total,
        "roles": roles,
        "offset": offset,
        "q": q or "",
        "names": {o.id: o.name for o in orgs},
        "errors": {},
    }
    return page(visit, "users.html", "platform", context, session)


def _set_disabled(visit: Visit, session: Session, runtime: RuntimeDep, user_id: int, off: bool) -> Response:
    try:
        accounts.set_disabled(session, visit.principal, user_id, off, runtime.clock())
    except Conflict:
        message = visit.t(N_("You cannot disable your own account; another operator must."))
        return page(
            visit,
            "error.html",
            "platform",
            {"title": visit.t(N_("Not possible")), "message": message},
            session,
            status=409,
        )
    return done(HOME + "/users", "disabled" if off else "enabled")


@router.post(HOME + "/users/{user_id}/disable")
def disable_user(user_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The account cannot sign in; its sessions and API tokens end at once (operator)."""
    return _set_disabled(visit, session, runtime, user_id, True)


@router.post(HOME + "/users/{user_id}/enable")
def enable_user(user_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The account may sign in again (operator)."""
    return _set_disabled(visit, session, runtime, user_id, False)


@router.get(HOME + "/fleet", response_class=HTMLResponse)
def fleet(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """Every charity's gateways, those that need attention first (operator)."""
    visit.principal.require_operator()
    offset = visit.offset()
    rows, total = sites.list_gateways(
        visit.principal, session, PageParams(limit=const.ADMIN_PAGE_MAX, offset=offset, sort=None)
    )
    now = runtime.clock()
    found = sorted(
        ((g, sites.health(g, now)) for g in rows), key=lambda p: (p[1] not in NEEDS_ATTENTION, p[0].id)
    )
    orgs, _ = tenancy.list_organisations(
        visit.principal, session, PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort=None)
    )
    counts: dict[str, int] = {}
    for _gateway, health in found:
        counts[health] = counts.get(health, 0) + 1
    context = {
        "rows": found,
        "total": total,
        "offset": offset,
        "page": const.ADMIN_PAGE_MAX,
        "names": {o.id: o.name for o in orgs},
        "counts": counts,
        "attention": NEEDS_ATTENTION,
    }
    return page(visit, "fleet.html", "platform", context, session)
