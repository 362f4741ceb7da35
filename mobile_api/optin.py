"""POST /mobile/v1/optin: explicit consent in, a pseudonymous identity out."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api.schemas import OptInCreate, OptInPublic
from server.api.deps import RuntimeDep, SessionDep
from server.api.ratelimit import OptInRateLimit
from server.presence.opt_in_notices import announce_opt_in
from server.subscribers import service as subscribers

router = APIRouter()


@router.post(
    "/optin",
    response_model=OptInPublic,
    status_code=201,
    operation_id="mobile_opt_in",
    responses={429: {"description": "Too many opt-ins from this address; see Retry-After (rate_limited)"}},
)
def opt_in(
    body: OptInCreate, session: SessionDep, runtime: RuntimeDep, _limit: OptInRateLimit
) -> OptInPublic:
    """Opt in with explicit consent; no name, e-mail or phone number is asked."""
    now = runtime.clock()
    opted = subscribers.opt_in(
        session,
        runtime.sealer,
        scopes=list(body.scopes),
        language=body.language,
        consent_version=body.consent_text_version,
        rotation_exponent=runtime.settings.eid_rotation_exponent,
        now=now,
    )
    announce_opt_in(session, opted.keyed.subscriber_id)  # every other worker adds it when this commits
    session.commit()  # the phone may advertise at once: index it only once it is durable
    runtime.eid_index.add(opted.keyed)
    return OptInPublic(
        device_token=opted.device_token,
        identity_key=opted.keyed.identity_key.hex(),
        rotation_exponent=opted.keyed.k,
        server_time=now,
    )
