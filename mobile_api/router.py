"""/mobile/v1: what phones call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobile_api.schemas import InboxPublic, OptInCreate, OptInPublic, PromptPublic
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.prompts import repository as prompts
from server.subscribers import service as subscribers

router = APIRouter(prefix="/mobile/v1", tags=["mobile"])


@router.post("/optin", response_model=OptInPublic, status_code=201, operation_id="mobile_opt_in")
def opt_in(body: OptInCreate, session: SessionDep, runtime: RuntimeDep) -> OptInPublic:
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
    session.commit()  # the phone may advertise at once: index it only once it is durable
    runtime.eid_index.add(opted.keyed)
    return OptInPublic(
        device_token=opted.device_token,
        identity_key=opted.keyed.identity_key.hex(),
        rotation_exponent=opted.keyed.k,
        server_time=now,
    )


@router.get("/me/prompts", response_model=InboxPublic, operation_id="mobile_inbox")
def inbox(
    subscriber: CurrentDevice, session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> InboxPublic:
    """The prompts this phone was given, newest first."""
    rows = prompts.inbox(session, subscriber.id, limit)
    return InboxPublic(
        prompts=[
            PromptPublic(
                id=decision.id,
                organisation=org.name,
                site=site.name,
                campaign_kind=campaign.kind,
                language=variant.language,
                title=variant.title,
                body=variant.body,
                cta_label=variant.cta_label,
                cta_url=campaign.cta_url,
                decided_at=decision.decided_at,
                expires_at=decision.expires_at,
            )
            for decision, variant, campaign, site, org in rows
        ]
    )
