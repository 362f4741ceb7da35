"""/admin: the signed-in person's organisations at a glance, and what is left to do before a campaign runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.campaigns import service as campaigns
from server.core import const
from server.core.paging import PageParams
from server.sites import admin_service as sites
from server.tenancy import service as tenancy
from server.tenancy.models import Organisation
from server.web.labels import NEEDS_ATTENTION
from server.web.pages import HOME, PageRoute, VisitDep, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ALL: Final = PageParams(limit=const.ADMIN_PAGE_MAX, offset=0, sort=None)
SHOWN: Final = 20  # organisations on the overview; the operator finds the rest on the platform pages


@dataclass(frozen=True, slots=True)
class Summary:
    organisation: Organisation
    role: str
    sites: int
    gateways: int
    working: int
    attention: int
    running: int
    campaigns: int


def summary(visit: VisitDep, session: Session, org: Organisation, runtime: RuntimeDep) -> Summary:
    scope = visit.principal
    site_rows, site_total = sites.list_sites(scope, session, ALL, org.id)
    gateway_rows, gateway_total = sites.list_gateways(scope, session, ALL, organisation_id=org.id)
    now = runtime.clock()
    health = [sites.health(g, now) for g in gateway_rows]
    campaign_rows, campaign_total = campaigns.list_campaigns(scope, session, ALL, organisation_id=org.id)
    return Summary(
        organisation=org,
        role=str(scope.role_in(org.id) or ""),
        sites=site_total,
        gateways=gateway_total,
        working=sum(1 for h in health if h == "ok"),
        attention=sum(1 for h in health if h in NEEDS_ATTENTION),
        running=sum(1 for c in campaign_rows if c.status == const.CampaignStatus.ACTIVE),
        campaigns=campaign_total,
    )


@router.get(HOME, response_class=HTMLResponse)
def overview(visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """Each organisation: its sites, gateways and campaigns, and the next step towards a live campaign."""
    orgs, total = tenancy.list_organisations(
        visit.principal, session, PageParams(limit=SHOWN, offset=0, sort=None)
    )
    summaries = [summary(visit, session, org, runtime) for org in orgs]
    return page(visit, "overview.html", "home", {"summaries": summaries, "total": total}, session)
