"""GET /mobile/v1/me/prompts: the prompts this phone was given."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobile_api.schemas import InboxPublic, PromptPublic
from server.api.deps import CurrentDevice, SessionDep
from server.prompts import repository as prompts

router = APIRouter()


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
