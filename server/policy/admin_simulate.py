"""/admin/api/v1/organisations/{org_id}/simulate: replay recent sightings with proposed settings."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.policy.schemas import SimulationCreate, SimulationPublic
from server.policy.simulation import simulate_organisation

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
    result = simulate_organisation(
        session, principal, org_id, body, runtime.clock(), runtime.settings.prompt_ttl_seconds
    )
    return SimulationPublic.model_validate(result)
