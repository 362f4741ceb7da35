"""GET /mobile/v1/me/prompts: the prompts this phone was given."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobile_api.schemas import InboxPublic, PromptPublic
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.core.config import Settings
from server.core.const import Outcome
from server.prompts import repository as prompts
from server.prompts.repository import InboxRow
from server.prompts.tokens import landing_token

router = APIRouter()


def landing_url(settings: Settings, decision_id: int) -> str:
    """The prompt's page /p/{token}, the same link its push carries."""
    token = landing_token(settings.secret_key.get_secret_value(), decision_id)
    return f"{settings.public_url.rstrip('/')}/p/{token}"


def prompt_public(settings: Settings, row: InboxRow) -> PromptPublic:
    """One inbox row as the phone sees it (GET /me/prompts and POST /sightings alike)."""
    decision, variant, campaign, site, org = row
    return PromptPublic(
        id=decision.id,
        organisation=org.name,
        site=site.name,
        campaign_kind=campaign.kind,
        language=variant.language,
        title=variant.title,
        body=variant.body,
        cta_label=variant.cta_label,
        cta_url=campaign.cta_url,
        landing_url=landing_url(settings, decision.id),
        decided_at=decision.decided_at,
        expires_at=decision.expires_at,
        test=decision.outcome == Outcome.TEST,
    )


@router.get("/me/prompts", response_model=InboxPublic, operation_id="mobile_inbox")
def inbox(
    subscriber: CurrentDevice,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> InboxPublic:
    """The prompts this phone was given, newest first."""
    rows = prompts.inbox(session, subscriber.id, limit)
    return InboxPublic(prompts=[prompt_public(runtime.settings, row) for row in rows])
