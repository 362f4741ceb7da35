"""An organisation's results: the funnel and the suppressions as bar charts with their tables, filtered by
site, campaign, variant and days; and each A/B pair's rates with their intervals, in plain words. The numbers
are the impact service's (the same the admin API answers); the CSV downloads are the admin API's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.campaigns import service as campaigns_service
from server.core import const
from server.core.errors import RuleViolation
from server.core.paging import PageParams
from server.impact import labels, service
from server.impact.schemas import Funnel, ImpactQuery, Suppressions, VariantReport
from server.sites import admin_service as sites
from server.tenancy import service as tenancy
from server.web import charts
from server.web.i18n import N_, format_decimal
from server.web.pages import PageRoute, Visit, VisitDep, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort="name")
API: Final = "/admin/api/v1/organisations/{org_id}/impact"
CHANNELS: Final = {"webpush": "Web Push", "fcm": "Android (FCM)", "apns": "iPhone (APNs)"}
BAD_DAY: Final = N_("Enter a day as YYYY-MM-DD, or leave it empty.")
BAD_SPAN: Final = N_("The first day must not be after the last, and at most 366 days at once.")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the form asked for, as typed (to show it again) and as the service's query."""

    form: dict[str, str]
    query: ImpactQuery
    errors: dict[str, str]


def _id(visit: Visit, name: str) -> int | None:
    raw = visit.query(name, 20)
    return int(raw) if raw.isdigit() else None


def _day(visit: Visit, name: str, errors: dict[str, str]) -> date | None:
    raw = visit.query(name, 10)
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        errors[name] = visit.t(BAD_DAY)
        return None


def filters(visit: Visit, org_id: int) -> Filters:
    errors: dict[str, str] = {}
    since, until = _day(visit, "since", errors), _day(visit, "until", errors)
    query = ImpactQuery(
        organisation_id=org_id,
        site_id=_id(visit, "site_id"),
        campaign_id=_id(visit, "campaign_id"),
        variant_id=_id(visit, "variant_id"),
        since=since,
        until=until,
    )
    form = {k: visit.query(k, 20) for k in ("site_id", "campaign_id", "variant_id", "since", "until")}
    return Filters(form, query, errors)


def _spanned(query: ImpactQuery, now: datetime, errors: dict[str, str], visit: Visit) -> ImpactQuery:
    """The query with its days checked: a wrong range shows an error and the last 30 days."""
    try:
        service.span(query, now)
    except RuleViolation:
        errors["since"] = visit.t(BAD_SPAN)
        return query.model_copy(update={"since": None, "until": None})
    return query


def _choices(visit: Visit, session: Session, report: VariantReport | None, org_id: int) -> dict[str, Any]:
    """The filter's options: the organisation's sites, campaigns and (with a report) variants."""
    everything = [("", visit.t(N_("all")))]
    site_rows, _ = sites.list_sites(visit.principal, session, ALL, org_id)
    campaign_rows, _ = campaigns_service.list_campaigns(visit.principal, session, ALL, organisation_id=org_id)
    variant_rows = [
        (str(arm.variant_id), f"{c.campaign_name}: {arm.label} ({arm.language})")
        for c in (report.campaigns if report else [])
        for arm in c.arms
    ]
    return {
        "site_choices": everything + [(str(s.id), s.name) for s in site_rows],
        "campaign_choices": everything + [(str(c.id), c.name) for c in campaign_rows],
        "variant_choices": everything + variant_rows,
    }


def _label(lang: str, pair: tuple[str, str]) -> str:
    return pair[0] if lang == "de" else pair[1]


def _funnel_rows(visit: Visit, funnel: Funnel) -> list[dict[str, Any]]:
    rows = []
    for step in funnel.steps:
        share = step.share_of_previous
        rows.append(
            {
                "label": step.label_de if visit.lang == "de" else step.label_en,
                "count": step.count,
                "share": None if share is None else format_decimal(share * 100, visit.lang, 1),
            }
        )
    return rows


def _chart(visit: Visit, rows: Sequence[tuple[str, int | None]]) -> charts.Chart:
    return charts.bars([(label, n, format_decimal(n, visit.lang, 0)) for label, n in rows])


def _links(org_id: int, query: ImpactQuery, suppressions_query: ImpactQuery) -> dict[str, str]:
    def params(q: ImpactQuery, keys: tuple[str, ...]) -> str:
        values = {k: getattr(q, k) for k in keys if getattr(q, k) is not None}
        return f"?{urlencode(values)}" if values else ""

    base = API.format(org_id=org_id)
    funnel_keys = ("site_id", "campaign_id", "variant_id", "since", "until")
    return {
        "funnel_csv": f"{base}/funnel.csv{params(query, funnel_keys)}",
        "suppressions_csv": f"{base}/suppressions.csv"
        f"{params(suppressions_query, ('site_id', 'since', 'until'))}",
    }


@router.get("/admin/results", response_class=HTMLResponse)
def results_of_mine(visit: VisitDep, session: SessionDep) -> Response:
    """The navigation's "Results": the one organisation's results page, or the list to choose from."""
    first_two = PageParams(limit=2, offset=0, sort=None)
    mine, total = tenancy.list_organisations(visit.principal, session, first_two)
    if total == 1:
        return RedirectResponse(f"/admin/organisations/{mine[0].id}/impact", status_code=303)
    return RedirectResponse("/admin/organisations", status_code=303)


@router.get("/admin/organisations/{org_id}/impact", response_class=HTMLResponse)
def results(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """The funnel and why visits were not prompted, as charts with tables, and the CSV downloads."""
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    now = runtime.clock()
    chosen = filters(visit, org_id)
    errors = dict(chosen.errors)
    query = _spanned(chosen.query, now, errors, visit)
    funnel = service.funnel(session, visit.principal, query, now)
    narrowed = query.campaign_id is not None or query.variant_id is not None
    per_site = query.model_copy(update={"campaign_id": None, "variant_id": None})
    held: Suppressions = service.suppressions(session, visit.principal, per_site, now)
    report = service.variants(session, visit.principal, ImpactQuery(organisation_id=org_id), now)
    steps = _funnel_rows(visit, funnel)
    answers = [(visit.t(N_("Accepted")), funnel.totals.accepted)] + [
        (_label(visit.lang, labels.ANSWERS[k]), n) for k, n in funnel.totals.declined_by_answer.items()
    ]
    reasons = [(r.label_de if visit.lang == "de" else r.label_en, r.count) for r in held.reasons]
    context = {
        "org": org,
        "form": chosen.form,
        "errors": errors,
        "funnel": funnel,
        "steps": steps,
        "funnel_chart": _chart(visit, [(s["label"], s["count"]) for s in steps]),
        "answers": answers,
        "answers_chart": _chart(visit, answers),
        "channels": [(CHANNELS.get(k, k), n) for k, n in funnel.totals.delivered_by_channel.items()],
        "suppressions": held,
        "reasons": reasons,
        "reasons_chart": _chart(visit, reasons),
        "narrowed": narrowed,
        "links": _links(org_id, query, per_site),
    } | _choices(visit, session, report, org_id)
    return page(visit, "impact.html", "results", context, session, status=422 if errors else 200)


def _percent(lang: str, value: float | None) -> str:
    return "–" if value is None else f"{format_decimal(value * 100, lang, 1)} %"


def _points(lang: str, value: float | None) -> str:
    if value is None:
        return "–"
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{format_decimal(abs(value) * 100, lang, 1)}"


@router.get("/admin/organisations/{org_id}/impact/variants", response_class=HTMLResponse)
def variants(org_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """Each campaign's variants: how often each was accepted, with its 95% interval, and each pair in one
    language compared, in plain words ("not enough data yet" until the interval says more)."""
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    now = runtime.clock()
    chosen = filters(visit, org_id)
    errors = dict(chosen.errors)
    query = _spanned(chosen.query.model_copy(update={"variant_id": None}), now, errors, visit)
    report = service.variants(session, visit.principal, query, now)
    lang = visit.lang
    campaigns = [
        {
            "name": c.campaign_name,
            "id": c.campaign_id,
            "arms": [
                {
                    "label": arm.label,
                    "language": arm.language,
                    "prompted": arm.prompted,
                    "accepted": arm.accepted,
                    "confirmed": arm.confirmed,
                    "rate": _percent(lang, arm.acceptance.estimate),
                    "low": _percent(lang, arm.acceptance.low),
                    "high": _percent(lang, arm.acceptance.high),
                }
                for arm in c.arms
            ],
            "comparisons": [
                {
                    "pair": f"{x.label_b} − {x.label_a} ({x.language})",
                    "difference": _points(lang, x.difference),
                    "low": _points(lang, x.low),
                    "high": _points(lang, x.high),
                    "verdict": x.summary_de if lang == "de" else x.summary_en,
                }
                for x in c.comparisons
            ],
        }
        for c in report.campaigns
    ]
    context = {
        "org": org,
        "report": report,
        "campaigns": campaigns,
        "form": chosen.form,
        "errors": errors,
    } | _choices(visit, session, None, org_id)
    return page(visit, "impact_variants.html", "results", context, session, status=422 if errors else 200)
