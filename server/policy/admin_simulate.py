"""/admin/api/v1/organisations/{org_id}/simulate: replay recent sightings with proposed settings."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.audit import service as audit
from server.core.const import Role
from server.core.errors import NotFound
from server.policy import repository
from server.policy.schemas import SimulationCreate, SimulationPublic
from server.policy.simulate import compare, proposal_from
from server.tenancy.service import visible_organisation

router = APIRouter(tags=["admin: policy"])


@router.post(
    "/organisations/{org_id}/simulate", response_model=SimulationPublic, operation_id="admin_simulate_policy"
)
def simulate_policy(
    org_id: OrganisationId,
    body: SimulationCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> SimulationPublic:
    """What the last days would have looked like at this charity's sites with the proposed settings, next to
    what the current settings decide; every person's caps still count prompts from other charities."""
    principal.require(org_id, Role.EDITOR)
    visible_organisation(principal, session, org_id)  # the operator passes require() for any id: 404, not 500
    own_sites = repository.organisation_sites(session, org_id)
    own_campaigns = repository.organisation_campaigns(session, org_id)
    foreign = sorted(set(body.campaigns) - own_campaigns)
    if foreign:
        raise NotFound(f"Campaigns {foreign} are not this organisation's; propose settings for its own only.")
    end = runtime.clock()
    recording = repository.recording(
        session, end - timedelta(days=body.days), end, runtime.settings.prompt_ttl_seconds
    )
    proposal = proposal_from(
        body.policy.model_dump(),
        {cid: c.model_dump() for cid, c in body.campaigns.items()},
        {org_id: body.organisation.model_dump()},
    )
    result = SimulationPublic.model_validate(compare(recording, proposal, sites=own_sites))
    audit.record(
        session,
        principal,
        "policy.simulate",
        "organisation",
        org_id,
        org_id,
        None,
        body.model_dump(mode="json"),
        end,
    )
    return result
