"""/gateway/v1/events: where gateways deliver their outbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server.api.deps import GatewayCredentials, RuntimeDep, gateway_at_site, gateway_token
from server.core.errors import PROBLEM_JSON, validation_detail
from server.presence import service
from server.presence.schemas import BatchProblem, BatchResult, EventBatchIn
from server.runtime import Runtime

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post(
    "/events",
    response_model=BatchResult,
    operation_id="gateway_post_events",
    responses={
        422: {"model": BatchProblem, "description": "Some items were rejected; the valid ones were stored"},
        503: {"description": "The server is still loading opted-in phones' keys; resend shortly"},
    },
)
async def post_events(
    batch: EventBatchIn, credentials: GatewayCredentials, runtime: RuntimeDep
) -> JSONResponse:
    """Store a batch of presence events idempotently and decide prompts.

    Partial batches are accepted: valid items are stored even when others are invalid. When any item is
    rejected the answer is 422 problem+json that names each bad field and still lists what was accepted.
    """
    token = gateway_token(credentials)  # a missing token is refused before any thread or connection
    # The busiest endpoint makes one trip through the thread pool for all its blocking work (the gateway's
    # token, recording, the answer), not one per sync dependency, endpoint and response validation.
    return await run_in_threadpool(_post_events, runtime, token, batch.events)


def _post_events(runtime: Runtime, token: str, events: list[dict[str, Any]]) -> JSONResponse:
    gateway = gateway_at_site(runtime, token)
    config = service.ingest_config(runtime.settings)
    record = service.recorder(runtime)
    now = runtime.clock()
    result = service.ingest(gateway, events, runtime.eid_index, config, now, record, runtime.opt_ins.since)
    if not result.rejected:
        # Already a validated model: answered as is, without FastAPI validating it again.
        return JSONResponse(result.model_dump(mode="json"))
    errors = [{"field": e.field, "message": e.message} for r in result.rejected for e in r.errors]
    body = {
        "type": "https://nahbar.org/problems/validation_failed",
        "title": "validation failed",
        "status": 422,
        "code": "validation_failed",
        "detail": validation_detail(
            errors, f"{len(result.rejected)} of {len(events)} events rejected (the others were stored)"
        ),
        **result.model_dump(mode="json"),
    }
    return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)
