"""An organisation's connections to its own systems: webhook endpoints (add, change, delete, a new secret
shown once, a test event, the delivery log) and the confirmation secret its sign-up page signs with.
Viewers see them; editors change them (the webhooks and impact services check the role again)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.core.const import Role
from server.core.errors import RuleViolation
from server.core.paging import PageParams
from server.impact import confirmations
from server.tenancy import service as tenancy
from server.web.forms import parse, refusal_errors
from server.web.i18n import N_
from server.web.pages import PageRoute, Visit, VisitDep, done, page
from server.webhooks import service
from server.webhooks.schemas import EVENT_TYPES, WebhookEndpointCreate, WebhookEndpointUpdate

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIST: Final = "/admin/organisations/{org_id}/webhooks"
LOG: Final = PageParams(limit=50, offset=0, sort=None)
GRACE: Final = timedelta(hours=24)
EVENTS: Final = {
    "prompt.accepted": N_("Someone accepted a prompt"),
    "prompt.declined": N_("Someone declined a prompt (with the answer)"),
    "gateway.needs_attention": N_("A gateway needs attention"),
    "campaign.budget_exhausted": N_("A campaign's daily budget is spent"),
    "webhook.test": N_("Test event"),
}
STATES: Final = {"pending": N_("waiting"), "sent": N_("delivered"), "failed": N_("given up")}
MESSAGES: Final = {
    "url": N_(
        "Enter an https:// address on the public internet (not a local or private network), "
        "without a user name or password."
    ),
}


def _url(org_id: int, endpoint_id: int | None = None) -> str:
    base = LIST.format(org_id=org_id)
    return base if endpoint_id is None else f"{base}/{endpoint_id}"


def events(visit: Visit) -> list[tuple[str, str]]:
    return [(k, visit.t(EVENTS[k])) for k in EVENT_TYPES]


def list_page(
    visit: Visit,
    session: Session,
    runtime: RuntimeDep,
    org_id: int,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The endpoints, the form for another, and the confirmation secret's state."""
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    context: dict[str, Any] = {
        "org": org,
        "endpoints": service.list_endpoints(session, visit.principal, org_id),
        "editor": visit.can(org_id, Role.EDITOR),
        "events": events(visit),
        "event_names": {k: visit.t(v) for k, v in EVENTS.items()},
        "form": form or {"url": "", "description": "", "event_types": list(EVENT_TYPES[:2])},
        "errors": errors or {},
        "confirmation": confirmations.secret_state(session, visit.principal, org_id),
        "confirm_url": confirm_url(runtime),
        "created": None,
        "confirmation_secret": None,
    } | extra
    return page(visit, "webhooks.html", "organisations", context, session, status=status)


def confirm_url(runtime: RuntimeDep) -> str:
    return f"{runtime.settings.public_url.rstrip('/')}/impact/v1/confirmations"


def _form(visit: Visit) -> dict[str, Any]:
    return {
        "url": visit.field("url"),
        "description": visit.field("description"),
        "event_types": [e for e in visit.fields("event_types") if e in EVENT_TYPES],
    }


@router.get(LIST, response_class=HTMLResponse)
def webhooks(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """The organisation's webhook endpoints and confirmation secret."""
    return list_page(visit, session, runtime, org_id)


@router.post(LIST, response_class=HTMLResponse)
def create(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """A new endpoint; its signing secret is shown on the page that follows, once (editors)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    visit.principal.require(org_id, Role.EDITOR)
    form = _form(visit)
    body: WebhookEndpointCreate | dict[str, str]
    if not form["event_types"]:
        body = {"event_types": visit.t(N_("Choose at least one event."))}
    else:
        body = parse(WebhookEndpointCreate, form | {"description": form["description"] or None}, visit.lang)
    if not isinstance(body, dict):
        allow = runtime.settings.allow_private_webhook_hosts
        try:
            created = service.create_endpoint(
                session, visit.principal, org_id, body, allow_private=allow, now=runtime.clock()
            )
        except RuleViolation as error:
            body = refusal_errors(visit.lang, error, MESSAGES)
        else:
            return list_page(visit, session, runtime, org_id, status=201, created=created)
    return list_page(visit, session, runtime, org_id, status=422, form=form, errors=body)


def detail_page(
    visit: Visit,
    session: Session,
    org_id: int,
    endpoint_id: int,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    secret: str | None = None,
) -> HTMLResponse:
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    endpoint = service.get_endpoint(session, visit.principal, org_id, endpoint_id)
    values = {
        "url": endpoint.url,
        "description": endpoint.description or "",
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    }
    context = {
        "org": org,
        "endpoint": endpoint,
        "editor": visit.can(org_id, Role.EDITOR),
        "events": events(visit),
        "event_names": {k: visit.t(v) for k, v in EVENTS.items()},
        "states": {k: visit.t(v) for k, v in STATES.items()},
        "form": form or values,
        "errors": errors or {},
        "secret": secret,
        "messages": service.list_messages(session, visit.principal, org_id, endpoint_id, LOG),
        "attempts": service.list_attempts(session, visit.principal, org_id, endpoint_id, LOG),
    }
    return page(visit, "webhook.html", "organisations", context, session, status=status)


@router.get(LIST + "/{endpoint_id}", response_class=HTMLResponse)
def webhook(org_id: int, endpoint_id: int, visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """One endpoint: its settings and the delivery log (the newest 50 messages and attempts)."""
    return detail_page(visit, session, org_id, endpoint_id)


@router.post(LIST + "/{endpoint_id}", response_class=HTMLResponse)
def update(
    org_id: int, endpoint_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Change the address, description, events, or switch it off and on (editors)."""
    service.get_endpoint(session, visit.principal, org_id, endpoint_id)
    visit.principal.require(org_id, Role.EDITOR)
    form = _form(visit) | {"enabled": visit.field("enabled") == "on"}
    body: WebhookEndpointUpdate | dict[str, str]
    if not form["event_types"]:
        body = {"event_types": visit.t(N_("Choose at least one event."))}
    else:
        body = parse(WebhookEndpointUpdate, form | {"description": form["description"] or None}, visit.lang)
    if not isinstance(body, dict):
        allow = runtime.settings.allow_private_webhook_hosts
        try:
            service.update_endpoint(
                session, visit.principal, org_id, endpoint_id, body, allow_private=allow, now=runtime.clock()
            )
        except RuleViolation as error:
            body = refusal_errors(visit.lang, error, MESSAGES)
        else:
            return done(_url(org_id, endpoint_id), "saved")
    return detail_page(visit, session, org_id, endpoint_id, status=422, form=form, errors=body)


@router.post(LIST + "/{endpoint_id}/rotate", response_class=HTMLResponse)
def rotate(
    org_id: int, endpoint_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A new signing secret, shown once; the old one signs too for another 24 hours (editors)."""
    rotated = service.rotate_secret(session, visit.principal, org_id, endpoint_id, GRACE, runtime.clock())
    return detail_page(visit, session, org_id, endpoint_id, status=201, secret=rotated.secret)


@router.post(LIST + "/{endpoint_id}/test")
def send_test(
    org_id: int, endpoint_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Queue a test event for this endpoint; the log shows what the receiver answered (editors)."""
    service.send_test(session, visit.principal, org_id, endpoint_id, runtime.clock())
    return done(_url(org_id, endpoint_id), "test_queued")


@router.post(LIST + "/{endpoint_id}/delete")
def delete(
    org_id: int, endpoint_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Delete the endpoint with its queue and log (editors)."""
    service.delete_endpoint(session, visit.principal, org_id, endpoint_id, runtime.clock())
    return done(_url(org_id), "removed")


@router.post("/admin/organisations/{org_id}/confirmation-secret", response_class=HTMLResponse)
def set_confirmation_secret(
    org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Switch confirmations on, or rotate their secret (shown once; the old one verifies 24 hours more)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    secret = runtime.settings.secret_key.get_secret_value()
    issued = confirmations.set_secret(
        session, visit.principal, org_id, secret, GRACE, confirm_url(runtime), runtime.clock()
    )
    return list_page(visit, session, runtime, org_id, status=201, confirmation_secret=issued.secret)


@router.post("/admin/organisations/{org_id}/confirmation-secret/delete")
def delete_confirmation_secret(org_id: int, visit: VisitDep, session: SessionDep) -> Response:
    """Switch confirmations off (editors)."""
    tenancy.visible_organisation(visit.principal, session, org_id)
    confirmations.delete_secret(session, visit.principal, org_id)
    return done(_url(org_id), "removed")
