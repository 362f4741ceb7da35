"""POST /mobile/v1/sightings: an iOS phone reports that it saw a site's iBeacon region (iOS cannot advertise
in the background, so it cannot be seen by a gateway); the same decision runs as for gateway events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from mobile_api.inbox import prompt_public
from mobile_api.schemas import PromptPublic
from mobile_api.sighting_schemas import MAX_SIGHTING_BYTES, SightingCreate, SightingPublic
from server.api.deps import CurrentDeviceId, RuntimeDep
from server.api.ratelimit import limit_sightings
from server.core.const import Outcome
from server.core.errors import PayloadTooLarge
from server.presence import service
from server.prompts import repository as prompts
from server.runtime import Runtime

INBOX_LOOKBACK = 20  # the new prompt is the newest; a few more cover a clock that stepped back


class _CappedRequest(Request):
    """A request whose body may not exceed MAX_SIGHTING_BYTES (the app-wide cap is much larger)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_SIGHTING_BYTES:
                raise _too_large()
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > MAX_SIGHTING_BYTES:
                    raise _too_large()
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A sighting body is limited to {MAX_SIGHTING_BYTES} bytes; send one sighting per request."
    )


class SightingRoute(APIRoute):
    """The body is read under the per-route cap before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            capped = _CappedRequest(request.scope, request.receive)
            await capped.body()  # raises PayloadTooLarge here, where the problem handler answers it
            return await handler(capped)

        return run


router = APIRouter(route_class=SightingRoute)


@router.post(
    "/sightings",
    response_model=SightingPublic,
    operation_id="mobile_post_sighting",
    responses={
        404: {"description": "No site uses this iBeacon region"},
        413: {"description": f"Body larger than {MAX_SIGHTING_BYTES} bytes"},
        429: {"description": "Too many sightings from this device; see Retry-After"},
        503: {"description": "The server is saturated; retry after Retry-After seconds"},
    },
)
async def post_sighting(
    body: SightingCreate, subscriber_id: CurrentDeviceId, runtime: RuntimeDep, request: Request
) -> JSONResponse:
    """Report that this phone entered, stayed in or left a site's iBeacon region.

    The server finds the site by the region (proximity UUID and major), stores the sighting once per `id`,
    merges it into the same visit as gateway sightings of this person at this site, and runs the prompt
    decision. A prompt comes back here and is in the inbox as well; a repeated `id` answers `duplicate`.
    """
    # One trip through the thread pool for the recording, as for gateways' events: the sighting is recorded
    # by the batcher in a transaction that begins and commits in that thread, and no session of this request
    # is open meanwhile (one that held the person's lock across a hop to another thread could wait for a
    # thread that every request blocked on that lock held).
    return await run_in_threadpool(_post_sighting, runtime, request, subscriber_id, body)


def _post_sighting(
    runtime: Runtime, request: Request, subscriber_id: uuid.UUID, body: SightingCreate
) -> JSONResponse:
    limit_sightings(request, runtime, subscriber_id)
    sighting = service.Sighting(
        key=body.id,
        source="phone",
        gateway_id=None,
        kind=body.kind,
        observed_at=body.observed_at,
        rssi=body.rssi,
        dwell_s=body.dwell_s,
    )
    outcome = service.report_phone_sighting(
        runtime.sessions,
        subscriber_id,
        (str(body.uuid), body.major),
        sighting,
        service.ingest_config(runtime.settings),
        runtime.clock(),
        service.recorder(runtime),
    )
    prompt = None
    if outcome.decision is not None and outcome.decision.outcome == Outcome.PROMPTED:
        prompt = _as_in_inbox(runtime, subscriber_id, outcome.decision.id)
    answer = SightingPublic(
        stored=outcome.stored, duplicate=outcome.duplicate, prompt=prompt, reason=outcome.reason
    )
    return JSONResponse(answer.model_dump(mode="json"))


def _as_in_inbox(runtime: Runtime, subscriber_id: uuid.UUID, decision_id: int) -> PromptPublic | None:
    """The prompt exactly as GET /me/prompts lists it (same query, same fields), read after the commit."""
    with runtime.sessions() as session:
        for row in prompts.inbox(session, subscriber_id, INBOX_LOOKBACK):
            if row[0].id == decision_id:
                return prompt_public(runtime.settings, row)
    return None
