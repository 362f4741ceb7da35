"""Organisations: their details and stricter caps, members and their roles, invites, and (for the operator)
creating and suspending them."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.core.const import Role
from server.core.errors import Conflict, NahbarError, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.policy.schemas import OrganisationProposal, SimulationCreate
from server.policy.simulation import simulate_organisation
from server.tenancy import service
from server.tenancy.models import Organisation
from server.tenancy.schemas import InviteCreate, OrganisationCreate, OrganisationUpdate
from server.web import whatif
from server.web.forms import STALE, blank_to_none, parse, refusal_errors
from server.web.i18n import N_
from server.web.labels import ROLES
from server.web.pages import PageRoute, Visit, VisitDep, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIST: Final = "/admin/organisations"
PAGE: Final = 50
ORG_FIELDS: Final = ("name", "privacy_contact", "prompts_per_week", "cooldown_days")
CAP_FIELDS: Final = ("prompts_per_week", "cooldown_days")
FIELD_MESSAGES: Final = {
    "prompts_per_week": N_("A charity may only be stricter than the platform: at most %(limit)s a week."),
    "cooldown_days": N_("A charity may only be stricter than the platform: at least %(limit)s days."),
}


def _page(offset: int) -> PageParams:
    return PageParams(limit=PAGE, offset=offset, sort="name")


def _org_url(org_id: int) -> str:
    return f"{LIST}/{org_id}"


@router.get(LIST, response_class=HTMLResponse)
def organisations(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The organisations the person belongs to (every one, for the operator, with a form to add one)."""
    offset, q = visit.offset(), visit.request.query_params.get("q", "")[:100] or None
    rows, total = service.list_organisations(visit.principal, session, _page(offset), q)
    context = {"rows": rows, "total": total, "offset": offset, "page": PAGE, "q": q or "", "errors": {}}
    return page(visit, "organisations.html", "organisations", context | {"form": {}}, session)


@router.post(LIST, response_class=HTMLResponse)
def create_organisation(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """A new charity on the platform (operator); then invite its first owner."""
    visit.principal.require_operator()
    form = {k: visit.field(k) for k in ("slug", "name", "privacy_contact")}
    body = parse(OrganisationCreate, blank_to_none(form, ("name", "slug")), visit.lang)
    if not isinstance(body, dict):
        try:
            org = service.create_organisation(session, visit.principal, body, runtime.clock())
        except Conflict:
            body = {"slug": visit.t(N_("This short name is taken; choose another."))}
        else:
            return done(_org_url(org.id), "created")
    rows, total = service.list_organisations(visit.principal, session, _page(0))
    context = {"rows": rows, "total": total, "offset": 0, "page": PAGE, "q": "", "errors": body, "form": form}
    return page(visit, "organisations.html", "organisations", context, session, status=422)


def _values(org: Organisation) -> dict[str, str]:
    return {k: "" if getattr(org, k) is None else str(getattr(org, k)) for k in ORG_FIELDS}


def _detail(
    visit: Visit,
    session: Session,
    org_id: int,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    current: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    org = service.visible_organisation(visit.principal, session, org_id)
    owner = visit.can(org_id, Role.OWNER)
    context: dict[str, Any] = {
        "org": org,
        "form": form or _values(org),
        "errors": errors or {},
        "current": current or {},
        "members": service.members(visit.principal, session, org_id),
        "invites": service.invites(visit.principal, session, org_id) if owner else [],
        "owner": owner,
        "editor": visit.can(org_id, Role.EDITOR),
        "platform": service.platform_settings(session),
        "roles": [(r, visit.t(ROLES[r])) for r in ("viewer", "editor", "owner")],
        "invite_form": {"email": "", "role": "viewer"},
        "invited": None,
    } | extra
    return page(visit, "organisation.html", "organisations", context, session, status=status)


@router.get(LIST + "/{org_id}", response_class=HTMLResponse)
def organisation(org_id: int, visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """One organisation: details, members, invites."""
    return _detail(visit, session, org_id)


def _proposal(form: dict[str, Any]) -> OrganisationProposal:
    cooldown = form.get("cooldown_days")
    return OrganisationProposal(
        prompts_per_week=form.get("prompts_per_week"),
        cooldown_days=min(cooldown, 365) if cooldown is not None else None,  # past a year: the same replay
    )


@router.post(LIST + "/{org_id}", response_class=HTMLResponse)
def update_organisation(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save the details (owners); changed caps are saved after their comparison was shown and confirmed."""
    org = service.visible_organisation(visit.principal, session, org_id)
    visit.principal.require(org_id, Role.OWNER)
    form = {k: visit.field(k) for k in ORG_FIELDS}
    if whatif.going_back(visit):
        return _detail(visit, session, org_id, form=form)
    body = parse(OrganisationUpdate, blank_to_none(form, ("name",)), visit.lang)
    if isinstance(body, dict):
        return _detail(visit, session, org_id, status=422, form=form, errors=body)
    changes = body.model_dump(exclude_unset=True)
    caps_changed = [k for k in CAP_FIELDS if changes.get(k) != getattr(org, k)]
    if caps_changed and not whatif.confirmed(visit):
        try:
            result = simulate_organisation(
                session,
                visit.principal,
                org_id,
                SimulationCreate(days=whatif.DAYS, organisation=_proposal(changes)),
                runtime.clock(),
                runtime.settings.prompt_ttl_seconds,
            )
        except NahbarError:
            result = None
        if result is not None:
            names = {
                "prompts_per_week": visit.t(N_("Prompts per person and week")),
                "cooldown_days": visit.t(N_("Days between two prompts from this charity")),
            }
            rows = [(names[k], _shown(getattr(org, k)), _shown(changes.get(k))) for k in caps_changed]
            title = visit.t(N_("You change how often %(name)s may ask people."), name=org.name)
            return whatif.confirmation(
                visit, session, "organisations", result, action=_org_url(org_id), title=title, changes=rows
            )
    try:
        service.update_organisation(session, visit.principal, org_id, body, visit.if_match(), runtime.clock())
    except PreconditionFailed:
        session.rollback()
        fresh = service.visible_organisation(visit.principal, session, org_id)
        now = _values(fresh)
        current = {k: now[k] for k in ORG_FIELDS if now[k] != form[k]}
        errors = {"form": visit.t(STALE)}
        return _detail(visit, session, org_id, status=409, form=form, errors=errors, current=current)
    except RuleViolation as error:
        limit = error.extra.get("limit")
        messages = {k: visit.t(v, limit=limit) for k, v in FIELD_MESSAGES.items()}
        errors = refusal_errors(visit.lang, error, {})
        errors = {k: messages.get(k, v) for k, v in errors.items()}
        return _detail(visit, session, org_id, status=422, form=form, errors=errors)
    return done(_org_url(org_id), "saved")


def _shown(value: object) -> str:
    return "–" if value is None else str(value)


@router.post(LIST + "/{org_id}/suspend")
def suspend(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Suspend the organisation: its campaigns stop at once (operator)."""
    service.visible_organisation(visit.principal, session, org_id)  # another charity's: 404, as in the API
    service.set_suspended(session, visit.principal, org_id, True, visit.if_match(), runtime.clock())
    return done(_org_url(org_id), "suspended")


@router.post(LIST + "/{org_id}/unsuspend")
def unsuspend(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Lift the suspension (operator)."""
    service.visible_organisation(visit.principal, session, org_id)
    service.set_suspended(session, visit.principal, org_id, False, visit.if_match(), runtime.clock())
    return done(_org_url(org_id), "unsuspended")


@router.post(LIST + "/{org_id}/invites", response_class=HTMLResponse)
def invite(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Invite someone by a one-time link, shown on the page that follows, once (owners)."""
    service.visible_organisation(visit.principal, session, org_id)
    visit.principal.require(org_id, Role.OWNER)
    form = {"email": visit.field("email"), "role": visit.field("role") or "viewer"}
    body = parse(InviteCreate, form, visit.lang)
    if isinstance(body, dict):
        return _detail(visit, session, org_id, status=422, errors=body, invite_form=form)
    row, token = service.create_invite(
        session, visit.principal, org_id, body.email, body.role, runtime.clock()
    )
    url = f"{runtime.settings.public_url.rstrip('/')}/admin/invite#{token}"
    invited = {"email": row.email, "url": url, "expires_at": row.expires_at}
    return _detail(visit, session, org_id, status=201, invited=invited)


@router.post(LIST + "/{org_id}/invites/{invite_id}/revoke")
def revoke_invite(
    org_id: int, invite_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Withdraw an unused invite (owners)."""
    service.revoke_invite(session, visit.principal, org_id, invite_id, runtime.clock())
    return done(_org_url(org_id), "revoked")


@router.post(LIST + "/{org_id}/members/{membership_id}", response_class=HTMLResponse)
def change_role(
    org_id: int, membership_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A member's new role (owners); the last owner stays owner."""
    service.visible_member(visit.principal, session, org_id, membership_id)
    visit.principal.require(org_id, Role.OWNER)
    role = visit.field("role")
    if role not in ROLES:
        return _detail(visit, session, org_id, status=422, errors={"form": visit.t(N_("Choose a role."))})
    try:
        service.change_role(
            session, visit.principal, org_id, membership_id, Role(role), visit.if_match(), runtime.clock()
        )
    except PreconditionFailed:
        session.rollback()
        return _detail(visit, session, org_id, status=409, errors={"form": visit.t(STALE)})
    except Conflict:
        message = visit.t(N_("This is the organisation's last owner; make someone else owner first."))
        return _detail(visit, session, org_id, status=409, errors={"form": message})
    return done(_org_url(org_id), "saved")


@router.post(LIST + "/{org_id}/members/{membership_id}/remove", response_class=HTMLResponse)
def remove_member(
    org_id: int, membership_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Remove a member (owners); the last owner stays."""
    try:
        service.remove_member(
            session, visit.principal, org_id, membership_id, visit.if_match(), runtime.clock()
        )
    except PreconditionFailed:
        session.rollback()
        return _detail(visit, session, org_id, status=409, errors={"form": visit.t(STALE)})
    except Conflict:
        message = visit.t(N_("This is the organisation's last owner; make someone else owner first."))
        return _detail(visit, session, org_id, status=409, errors={"form": message})
    return done(_org_url(org_id), "removed")
