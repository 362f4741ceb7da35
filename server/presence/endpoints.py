"""/gateway/v1/events: where gateways deliver their outbox."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.api.deps import AuthenticatedGateway, RuntimeDep
from server.core.errors import PROBLEM_JSON
from server.presence import service
from server.presence.schemas import BatchResult, EventBatchIn

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post(
    "/events",
    response_model=BatchResult,
    operation_id="gateway_post_events",
    responses={422: {"description": "Some items were rejected; the valid ones were stored (see body)"}},
)
def post_events(
    batch: EventBatchIn, gateway: AuthenticatedGateway, runtime: RuntimeDep
) -> BatchResult | JSONResponse:
    """Store a batch of presence events idempotently and decide prompts.

    Partial batches are accepted: valid items are stored even when others are invalid. When any item is
    rejected the answer is 422 problem+json that names each bad field and still lists what was accepted.
    """
    settings = runtime.settings
    config = service.IngestConfig(timedelta(seconds=settings.visit_gap_seconds), settings.prompt_ttl_seconds)
    record = runtime.sightings.record if runtime.sightings is not None else service.in_session(runtime)
    result = service.ingest(gateway, batch.events, runtime.eid_index, config, runtime.clock(), record)
    if not result.rejected:
        # Already a validated model: answered as is, without FastAPI validating it again in another trip
        # through the thread pool (the busiest endpoint's answers otherwise wait there behind requests).
        return JSONResponse(result.model_dump(mode="json"))
    fields = ", ".join(e.field for r in result.rejected for e in r.errors)
    body = {
        "type": "https://nahbar.org/problems/validation_failed",
        "title": "validation failed",
        "status": 422,
        "code": "validation_failed",
        "detail": f"{len(result.rejected)} of {len(batch.events)} events rejected ({fields}); "
        "the others were stored.",
        **result.model_dump(mode="json"),
    }
    return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)
