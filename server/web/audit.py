"""An organisation's audit log (owners): who changed what, before and after, filtered by kind and date."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from server.api.deps import SessionDep
from server.audit import service
from server.core.paging import PageParams
from server.tenancy import service as tenancy
from server.web.i18n import N_, zone
from server.web.pages import PageRoute, VisitDep, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE: Final = 50
ENTITIES: Final = {
    "organisation": N_("the organisation"),
    "membership": N_("members"),
    "invite": N_("invites"),
    "site": N_("sites"),
    "site_beacon": N_("beacons"),
    "gateway": N_("gateways"),
    "campaign": N_("campaigns"),
    "test_device": N_("test phones"),
}


def changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """The fields whose value differs between before and after."""
    old, new = before or {}, after or {}
    return [(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


@router.get("/admin/organisations/{org_id}/audit", response_class=HTMLResponse)
def audit_log(org_id: int, visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """Newest first; filter by what changed and since which day."""
    org = tenancy.visible_organisation(visit.principal, session, org_id)
    entity = visit.query("entity")
    since_text = visit.query("since", 10)
    since: datetime | None = None
    try:
        since = datetime.combine(date.fromisoformat(since_text), time(), zone(None)) if since_text else None
    except ValueError:
        since_text = ""
    offset = visit.offset()
    rows, total = service.entries(
        visit.principal,
        session,
        PageParams(limit=PAGE, offset=offset, sort=None),
        organisation_id=org_id,
        entity=entity if entity in ENTITIES else None,
        since=since,
    )
    emails = {member.user_id: email for member, email in tenancy.members(visit.principal, session, org_id)}
    entries = [
        (row, emails.get(row.actor_user_id or 0, row.actor), changed(row.before, row.after)) for row in rows
    ]
    context = {
        "org": org,
        "entries": entries,
        "total": total,
        "offset": offset,
        "page": PAGE,
        "entity": entity if entity in ENTITIES else "",
        "since": since_text,
        "entities": [("", visit.t(N_("everything")))] + [(k, visit.t(v)) for k, v in ENTITIES.items()],
    }
    return page(visit, "audit.html", "organisations", context, session)
