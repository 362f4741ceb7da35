"""What-if for admins: the last weeks' recorded visits replayed with proposed settings next to the settings in
force (server/policy/simulate.py does the replay); for one charity's sites, or for the whole platform."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.audit import service as audit
from server.core.const import Role
from server.core.errors import NotFound
from server.policy import repository
from server.policy.schemas import SimulationCreate
from server.policy.simulate import compare, proposal_from
from server.tenancy.scope import Principal
from server.tenancy.service import visible_organisation


def _compare(
    session: Session, body: SimulationCreate, end: datetime, ttl_s: int, org_id: int | None
) -> dict[str, Any]:
    recording = repository.recording(session, end - timedelta(days=body.days), end, ttl_s)
    proposal = proposal_from(
        body.policy.model_dump(),
        {cid: c.model_dump() for cid, c in body.campaigns.items()},
        {org_id: body.organisation.model_dump()} if org_id is not None else {},
    )
    sites = repository.organisation_sites(session, org_id) if org_id is not None else None
    return compare(recording, proposal, sites=sites)


def simulate_organisation(
    session: Session, scope: Principal, org_id: int, body: SimulationCreate, now: datetime, ttl_s: int
) -> dict[str, Any]:
    """The charity's sites over the last `body.days` days, now and with its proposed settings (editors);
    every person's caps still count prompts from other charities. Recorded in the audit log."""
    scope.require(org_id, Role.EDITOR)
    visible_organisation(scope, session, org_id)  # the operator passes require() for any id: 404, not 500
    foreign = sorted(set(body.campaigns) - repository.organisation_campaigns(session, org_id))
    if foreign:
        raise NotFound(f"Campaigns {foreign} are not this organisation's; propose settings for its own only.")
    result = _compare(session, body, now, ttl_s, org_id)
    audit.record(
        session,
        scope,
        "policy.simulate",
        "organisation",
        org_id,
        org_id,
        None,
        body.model_dump(mode="json"),
        now,
    )
    return result


def simulate_platform(
    session: Session, scope: Principal, body: SimulationCreate, now: datetime, ttl_s: int
) -> dict[str, Any]:
    """Every site over the last `body.days` days, now and with proposed platform settings (operator)."""
    scope.require_operator()
    result = _compare(session, body, now, ttl_s, None)
    audit.record(
        session,
        scope,
        "policy.simulate",
        "platform_settings",
        None,
        None,
        None,
        body.model_dump(mode="json"),
        now,
    )
    return result
