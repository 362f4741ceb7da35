"""/gateway/v1/enroll: the one public gateway endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import RuntimeDep, SessionDep
from server.sites import service
from server.sites.schemas import EnrolmentCreate, EnrolmentPublic

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post("/enroll", response_model=EnrolmentPublic, operation_id="gateway_enroll")
def enroll(body: EnrolmentCreate, session: SessionDep, runtime: RuntimeDep) -> EnrolmentPublic:
    """Exchange a one-time enrolment code for this gateway's bearer token (shown once)."""
    gateway, token = service.enrol(session, body.code, runtime.clock())
    return EnrolmentPublic(gateway_id=gateway.id, site_id=gateway.site_id, token=token, config=gateway.config)
