"""Campaigns: create and edit (kind, sites, schedule, dwell, priority, budget, call to action, texts per
language) with a preview of the notification and the landing page; the activation checklist; pause and
resume; the prompts it gave."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.campaigns import service, trial_send
from server.campaigns.models import Campaign
from server.campaigns.schemas import CampaignCreate, CampaignUpdate
from server.core import const
from server.core.const import Role
from server.core.errors import Conflict, NahbarError, PreconditionFailed, RuleViolation
from server.core.paging import PageParams
from server.policy.schemas import CampaignProposal, SimulationCreate
from server.policy.simulation import simulate_organisation
from server.prompts import support
from server.prompts.landing_html import TEXTS as LANDING
from server.sites import admin_service as sites
from server.tenancy import service as tenancy
from server.web import whatif
from server.web.campaign_form import (
    SCALARS,
    blank_variants,
    form_of,
    request_values,
    variants_of,
)
from server.web.checklist import checklist
from server.web.forms import STALE, parse, refusal_errors
from server.web.i18n import N_, zone
from server.web.labels import KINDS, LANGUAGE_NAMES, STATUSES
from server.web.pages import PageRoute, Visit, VisitDep, chosen_organisation, done, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIST: Final = "/admin/campaigns"
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")
SIMULATED: Final = ("daily_budget", "min_dwell_s", "max_dwell_s")
MOVES: Final = ("activate", "pause", "resume", "end")


def _url(campaign_id: int) -> str:
    return f"{LIST}/{campaign_id}"


@router.get(LIST, response_class=HTMLResponse)
def campaigns(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The campaigns of the person's organisations (or of one), by status."""
    chosen = chosen_organisation(visit, session)
    status = visit.query("status")
    rows, total = service.list_campaigns(
        visit.principal,
        session,
        PageParams(limit=50, offset=visit.offset(), sort="name"),
        organisation_id=chosen,
        status=status if status in STATUSES else None,
    )
    orgs, _ = tenancy.list_organisations(visit.principal, session, ALL)
    context = {
        "rows": rows,
        "total": total,
        "offset": visit.offset(),
        "organisation_id": chosen,
        "status": status if status in STATUSES else "",
        "names": {o.id: o.name for o in orgs},
        "can_add": any(visit.can(o.id) for o in orgs),
        "statuses": [("", visit.t(N_("all")))] + [(k, visit.t(v)) for k, v in STATUSES.items()],
    }
    return page(visit, "campaigns.html", "campaigns", context, session)


def _editor_page(
    visit: Visit,
    session: Session,
    *,
    form: dict[str, Any],
    campaign: Campaign | None,
    errors: dict[str, str] | None = None,
    current: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The campaign's form with its preview; the organisation's sites to choose from."""
    org_choices = [
        (o.id, o.name)
        for o in tenancy.list_organisations(visit.principal, session, ALL)[0]
        if visit.can(o.id, Role.EDITOR)
    ]
    org_id = campaign.organisation_id if campaign else _int(form.get("organisation_id"))
    if org_id is None and org_choices:
        org_id = org_choices[0][0]
    site_rows = sites.list_sites(visit.principal, session, ALL, org_id)[0] if org_id is not None else []
    platform = tenancy.platform_settings(session)
    org = tenancy.visible_organisation(visit.principal, session, org_id) if org_id is not None else None
    context = {
        "campaign": campaign,
        "form": form,
        "errors": errors or {},
        "current": current or {},
        "organisations": org_choices,
        "org": org,
        "sites": [
            (str(s.id), f"{s.name} ({visit.t(LANGUAGE_NAMES.get(s.language, s.language))})")
            for s in site_rows
        ],
        "kinds": [(k, visit.t(v)) for k, v in KINDS.items()],
        "languages": [(k, visit.t(v)) for k, v in LANGUAGE_NAMES.items()],
        "platform": platform,
        "landing": LANDING,
        "limits": {
            "title": const.VARIANT_TITLE_MAX,
            "body": const.VARIANT_BODY_MAX,
            "cta": const.VARIANT_CTA_MAX,
        },
        "zone": zone(None).key,
    }
    return page(visit, "campaign_form.html", "campaigns", context, session, status=status)


def _site_label(visit: Visit, name: str, language: str) -> str:
    return f"{name} ({visit.t(LANGUAGE_NAMES.get(language, language))})"


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


@router.get(LIST + "/new", response_class=HTMLResponse)
def new_campaign(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """An empty campaign form: a German and an English text to fill in."""
    chosen_organisation(visit, session)
    form: dict[str, Any] = dict.fromkeys(SCALARS, "") | {
        "organisation_id": visit.query("organisation_id"),
        "kind": "volunteer",
        "priority": "0",
        "site_ids": [],
        "variants": blank_variants(),
    }
    return _editor_page(visit, session, form=form, campaign=None)


@router.post(LIST, response_class=HTMLResponse)
def create_campaign(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save a new campaign as a draft (editors); the preview button only shows the texts."""
    form = form_of(visit)
    org_id = _int(form["organisation_id"])
    if org_id is not None:
        tenancy.visible_organisation(visit.principal, session, org_id)
        visit.principal.require(org_id, Role.EDITOR)
    if visit.field("preview") == "yes":
        return _editor_page(visit, session, form=form, campaign=None)
    values = request_values(form) | {"organisation_id": form["organisation_id"]}
    body = parse(CampaignCreate, values, visit.lang)
    if isinstance(body, dict):
        return _editor_page(visit, session, form=form, campaign=None, errors=body, status=422)
    try:
        campaign = service.create(session, visit.principal, body, runtime.clock())
    except RuleViolation as error:
        errors = refusal_errors(visit.lang, error, {})
        return _editor_page(visit, session, form=form, campaign=None, errors=errors, status=422)
    return done(_url(campaign.id), "created")


def _detail(
    visit: Visit,
    session: Session,
    runtime: RuntimeDep,
    campaign_id: int,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    sent: str | None = None,
) -> HTMLResponse:
    campaign = service.visible_campaign(visit.principal, session, campaign_id)
    public = service.public(session, campaign)
    org = tenancy.visible_organisation(visit.principal, session, campaign.organisation_id)
    now = runtime.clock()
    site_rows = sites.list_sites(visit.principal, session, ALL, campaign.organisation_id)[0]
    names = {s.id: s.name for s in site_rows}
    zones = {s.id: s.timezone for s in site_rows}
    decisions, decided = support.decisions(
        visit.principal,
        session,
        PageParams(limit=20, offset=0, sort=None),
        runtime.settings.secret_key.get_secret_value(),
        campaign_id=campaign.id,
    )
    editor = visit.can(campaign.organisation_id, Role.EDITOR)
    devices = trial_send.devices(session, visit.principal, campaign.organisation_id)
    context = {
        "campaign": public,
        "org": org,
        "checks": checklist(visit, service.readiness(session, visit.principal, campaign, now)),
        "site_names": names,
        "site_zones": zones,
        "decisions": decisions,
        "decided": decided,
        "editor": editor,
        "landing": LANDING,
        "devices": devices,
        "device_options": [(str(d.id), d.label) for d in devices],
        "variant_languages": [
            (lang, visit.t(LANGUAGE_NAMES[lang])) for lang in sorted({v.language for v in public.variants})
        ],
        "errors": errors or {},
        "sent": sent,
        "walk_by": campaign.min_dwell_s == 0,
    }
    return page(visit, "campaign.html", "campaigns", context, session, status=status)


@router.get(LIST + "/{campaign_id}", response_class=HTMLResponse)
def campaign(campaign_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """One campaign: what is missing before it can run, its preview, its status, the prompts it gave."""
    return _detail(visit, session, runtime, campaign_id)


def _saved_form(session: Session, campaign: Campaign) -> dict[str, Any]:
    public = service.public(session, campaign)
    form: dict[str, Any] = {}
    for name in SCALARS:
        value = getattr(public, name)
        if isinstance(value, datetime):
            value = value.astimezone(zone(None)).strftime("%Y-%m-%dT%H:%M")
        form[name] = "" if value is None else str(value)
    form["organisation_id"] = str(campaign.organisation_id)
    form["site_ids"] = [str(i) for i in public.site_ids]
    form["variants"] = variants_of(public.variants) + blank_variants(1)
    return form


@router.get(LIST + "/{campaign_id}/edit", response_class=HTMLResponse)
def edit_campaign(campaign_id: int, visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The campaign's form, as saved (editors)."""
    campaign = service.visible_campaign(visit.principal, session, campaign_id)
    visit.principal.require(campaign.organisation_id, Role.EDITOR)
    return _editor_page(visit, session, form=_saved_form(session, campaign), campaign=campaign)


def _proposal(changes: dict[str, Any]) -> CampaignProposal:
    return CampaignProposal(**{k: changes.get(k) for k in SIMULATED if changes.get(k) is not None})


@router.post(LIST + "/{campaign_id}/edit", response_class=HTMLResponse)
def update_campaign(campaign_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Save the campaign (editors). A changed budget or dwell is saved once its comparison was confirmed;
    a stale form shows what someone else saved meanwhile."""
    campaign = service.visible_campaign(visit.principal, session, campaign_id)
    visit.principal.require(campaign.organisation_id, Role.EDITOR)
    form = form_of(visit) | {"organisation_id": str(campaign.organisation_id)}
    if visit.field("preview") == "yes" or whatif.going_back(visit):
        return _editor_page(visit, session, form=form, campaign=campaign)
    body = parse(CampaignUpdate, request_values(form), visit.lang)
    if isinstance(body, dict):
        return _editor_page(visit, session, form=form, campaign=campaign, errors=body, status=422)
    changes = body.model_dump(exclude_unset=True)
    changed = [k for k in SIMULATED if changes.get(k) != getattr(campaign, k)]
    if changed and not whatif.confirmed(visit):
        result = _simulate(visit, session, runtime, campaign, changes)
        if result is not None:
            names = {
                "daily_budget": visit.t(N_("Prompts per day (budget)")),
                "min_dwell_s": visit.t(N_("Minimum dwell (seconds)")),
                "max_dwell_s": visit.t(N_("Maximum dwell (seconds)")),
            }
            rows = [(names[k], _shown(getattr(campaign, k)), _shown(changes.get(k))) for k in changed]
            title = visit.t(N_("You change when and how often “%(name)s” asks people."), name=campaign.name)
            return whatif.confirmation(
                visit,
                session,
                "campaigns",
                result,
                action=f"{_url(campaign_id)}/edit",
                title=title,
                changes=rows,
            )
    try:
        service.update(session, visit.principal, campaign_id, body, visit.if_match(), runtime.clock())
    except PreconditionFailed:
        session.rollback()
        fresh = _saved_form(session, service.visible_campaign(visit.principal, session, campaign_id))
        current = {k: fresh[k] for k in SCALARS if fresh[k] != form.get(k, "")}
        errors = {"form": visit.t(STALE)}
        return _editor_page(
            visit, session, form=form, campaign=campaign, errors=errors, current=current, status=409
        )
    except (RuleViolation, Conflict) as error:
        errors = refusal_errors(visit.lang, error, {})
        return _editor_page(visit, session, form=form, campaign=campaign, errors=errors, status=422)
    return done(_url(campaign_id), "saved")


def _simulate(
    visit: Visit, session: Session, runtime: RuntimeDep, campaign: Campaign, changes: dict[str, Any]
) -> dict[str, Any] | None:
    body = SimulationCreate(days=whatif.DAYS, campaigns={campaign.id: _proposal(changes)})
    try:
        return simulate_organisation(
            session,
            visit.principal,
            campaign.organisation_id,
            body,
            runtime.clock(),
            runtime.settings.prompt_ttl_seconds,
        )
    except NahbarError:  # a value the simulator cannot take (it checks its own bounds): save without it
        return None


def _shown(value: object) -> str:
    return "–" if value is None else str(value)


def _move(move: str) -> Callable[..., Response]:
    def change_status(
        campaign_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep
    ) -> Response:
        try:
            service.move(session, visit.principal, campaign_id, move, visit.if_match(), runtime.clock())
        except RuleViolation as error:
            session.rollback()
            errors = refusal_errors(visit.lang, error, {})
            why = visit.t(N_("The campaign cannot run yet: the checklist says what is missing."))
            return _detail(visit, session, runtime, campaign_id, status=422, errors={"form": why} | errors)
        except PreconditionFailed:
            session.rollback()
            return _detail(visit, session, runtime, campaign_id, status=409, errors={"form": visit.t(STALE)})
        except Conflict:
            session.rollback()
            message = visit.t(N_("This is not possible in the campaign's present state."))
            return _detail(visit, session, runtime, campaign_id, status=409, errors={"form": message})
        return done(_url(campaign_id), move)

    change_status.__doc__ = f"{move.capitalize()} the campaign (editors); one that cannot run yet says why."
    return change_status


for _name in MOVES:
    router.add_api_route(
        LIST + "/{campaign_id}/" + _name, _move(_name), methods=["POST"], response_class=HTMLResponse
    )
