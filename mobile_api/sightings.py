"""POST /mobile/v1/sightings: an iOS phone reports that it saw a site's iBeacon region (iOS cannot advertise
in the background, so it cannot be seen by a gateway); the same decision runs as for gateway events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from mobile_api.inbox import prompt_public
from mobile_api.schemas import PromptPublic
from mobile_api.sighting_schemas import MAX_SIGHTING_BYTES, SightingCreate, SightingPublic
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.api.ratelimit import SightingRateLimit
from server.core.config import Settings
from server.core.const import Outcome
from server.core.errors import PayloadTooLarge
from server.presence import service
from server.prompts import repository as prompts

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
    },
)
def post_sighting(
    body: SightingCreate,
    subscriber: CurrentDevice,
    session: SessionDep,
    runtime: RuntimeDep,
    _limit: SightingRateLimit,
) -> SightingPublic:
    """Report that this phone entered, stayed in or left a site's iBeacon region.

    The server finds the site by the region (proximity UUID and major), stores the sighting once per `id`,
    merges it into the same visit as gateway sightings of this person at this site, and runs the prompt
    decision. A prompt comes back here and is in the inbox as well; a repeated `id` answers `duplicate`.
    """
    settings = runtime.settings
    config = service.IngestConfig(timedelta(seconds=settings.visit_gap_seconds), settings.prompt_ttl_seconds)
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
        session, subscriber, (str(body.uuid), body.major), sighting, config, runtime.clock()
    )
    prompt = None
    if outcome.decision is not None and outcome.decision.outcome == Outcome.PROMPTED:
        prompt = _as_in_inbox(session, settings, subscriber.id, outcome.decision.id)
    return SightingPublic(
        stored=outcome.stored, duplicate=outcome.duplicate, prompt=prompt, reason=outcome.reason
    )


def _as_in_inbox(
    session: Session, settings: Settings, subscriber_id: uuid.UUID, decision_id: int
) -> PromptPublic | None:
    """The prompt exactly as GET /me/prompts lists it (same query, same fields)."""
    session.flush()
    for row in prompts.inbox(session, subscriber_id, INBOX_LOOKBACK):
        if row[0].id == decision_id:
            return prompt_public(settings, row)
    return None
