"""/gateway/v1: enrolment (the one public gateway endpoint), then the config and heartbeat control channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from server.api.deps import CurrentGateway, RuntimeDep, SessionDep
from server.core.errors import PayloadTooLarge
from server.sites import service
from server.sites.schemas import (
    MAX_HEARTBEAT_BYTES,
    EnrolmentCreate,
    EnrolmentPublic,
    GatewayConfigPublic,
    HeartbeatIn,
)

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post(
    "/enroll",
    response_model=EnrolmentPublic,
    operation_id="gateway_enroll",
    responses={
        401: {"description": "Unknown or used enrolment code (unauthorized)"},
        409: {"description": "The enrolment code has expired; ask for a new one (conflict)"},
    },
)
def enroll(body: EnrolmentCreate, session: SessionDep, runtime: RuntimeDep) -> EnrolmentPublic:
    """Exchange a one-time enrolment code for this gateway's bearer token (shown once)."""
    gateway, token = service.enrol(session, body.code, runtime.clock())
    return EnrolmentPublic(gateway_id=gateway.id, site_id=gateway.site_id, token=token, config=gateway.config)


@router.get(
    "/config",
    response_model=GatewayConfigPublic,
    operation_id="gateway_get_config",
    responses={304: {"description": "Unchanged since the ETag sent in If-None-Match; no body"}},
)
def get_config(
    gateway: CurrentGateway,
    session: SessionDep,
    runtime: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The gateway's effective config (thresholds, dwell marks, calibration, watched beacons), with a
    strong ETag; gateways ask every minute."""
    rotation = runtime.settings.eid_rotation_exponent
    config = service.gateway_config(session, gateway, runtime.clock(), rotation)
    etag = service.config_etag(config)
    # no-cache: a proxy may keep it, but must ask us again, so a changed config is never served stale.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if service.etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(config.model_dump(mode="json"), headers=headers)


async def _heartbeat_size(request: Request) -> None:
    # The app-wide limit is sized for event batches; a heartbeat is small, and a big one is a bug.
    if len(await request.body()) > MAX_HEARTBEAT_BYTES:
        raise PayloadTooLarge(f"Heartbeats are limited to {MAX_HEARTBEAT_BYTES} bytes; send fewer beacons.")


@router.post(
    "/heartbeat",
    status_code=204,
    operation_id="gateway_post_heartbeat",
    dependencies=[Depends(_heartbeat_size)],
    responses={413: {"description": "Body larger than the heartbeat limit"}},
)
def post_heartbeat(
    body: HeartbeatIn, gateway: CurrentGateway, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Store the gateway's health for the fleet view and note when it last saw its site's beacons."""
    service.record_heartbeat(session, gateway, body, runtime.clock())
    return Response(status_code=204)
