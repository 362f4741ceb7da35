"""/admin/api/v1/campaigns: volunteer and donation campaigns, their variants, sites and status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from server.api.deps import CurrentAdmin, RuntimeDep, SessionDep
from server.api.etag import IfMatch, set_etag
from server.api.paging import Page, PageDep
from server.campaigns import service
from server.campaigns.schemas import CampaignCreate, CampaignPublic, CampaignUpdate
from server.core.const import CampaignKind, CampaignStatus

router = APIRouter(prefix="/campaigns", tags=["admin: campaigns"])
_RULES: dict[int | str, dict[str, Any]] = {
    422: {"description": "A rule protecting the people prompted is broken; `errors` says which"}
}
_ENDED: dict[int | str, dict[str, Any]] = {
    409: {"description": "An ended campaign cannot change, nor can a campaign move to that status (conflict)"}
}


@router.get("", response_model=Page[CampaignPublic], operation_id="admin_list_campaigns")
def list_campaigns(
    principal: CurrentAdmin,
    session: SessionDep,
    page: PageDep,
    organisation_id: Annotated[int | None, Query()] = None,
    status: Annotated[CampaignStatus | None, Query()] = None,
    kind: Annotated[CampaignKind | None, Query()] = None,
    site_id: Annotated[int | None, Query(description="Only campaigns running at this site")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name")] = None,
) -> Page[CampaignPublic]:
    """Campaigns of the caller's organisations."""
    rows, total = service.list_campaigns(
        principal,
        session,
        page,
        organisation_id=organisation_id,
        status=status,
        kind=kind,
        site_id=site_id,
        q=q,
    )
    return Page(
        items=[service.public(session, c) for c in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "", status_code=201, response_model=CampaignPublic, operation_id="admin_create_campaign", responses=_RULES
)
def create_campaign(
    body: CampaignCreate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> CampaignPublic:
    """A new campaign, as a draft (editors)."""
    campaign = service.create(session, principal, body, runtime.clock())
    set_etag(response, campaign.version)
    return service.public(session, campaign)


@router.get("/{campaign_id}", response_model=CampaignPublic, operation_id="admin_get_campaign")
def get_campaign(
    campaign_id: int, principal: CurrentAdmin, session: SessionDep, response: Response
) -> CampaignPublic:
    """One campaign with its sites and variants, and its ETag."""
    campaign = service.visible_campaign(principal, session, campaign_id)
    set_etag(response, campaign.version)
    return service.public(session, campaign)


@router.patch(
    "/{campaign_id}",
    response_model=CampaignPublic,
    operation_id="admin_update_campaign",
    responses=_RULES | _ENDED,
)
def update_campaign(
    campaign_id: int,
    body: CampaignUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> CampaignPublic:
    """Change a campaign (editors); needs If-Match. An active campaign must stay valid."""
    campaign = service.update(session, principal, campaign_id, body, if_match, runtime.clock())
    set_etag(response, campaign.version)
    return service.public(session, campaign)


def _status_endpoint(action: str) -> Callable[..., CampaignPublic]:
    def change_status(
        campaign_id: int,
        principal: CurrentAdmin,
        session: SessionDep,
        runtime: RuntimeDep,
        response: Response,
        if_match: IfMatch = None,
    ) -> CampaignPublic:
        campaign = service.move(session, principal, campaign_id, action, if_match, runtime.clock())
        set_etag(response, campaign.version)
        return service.public(session, campaign)

    change_status.__doc__ = _STATUS_DOCS[action]
    return change_status


_STATUS_DOCS = {
    "activate": "Start a draft or paused campaign, once the rules protecting people hold (editors).",
    "pause": "Stop prompting at once; nothing else changes (editors).",
    "resume": "Prompt again after a pause; the rules are checked again (editors).",
    "end": "End a campaign for good (editors).",
}
for _action in _STATUS_DOCS:
    router.add_api_route(
        f"/{{campaign_id}}/{_action}",
        _status_endpoint(_action),
        methods=["POST"],
        response_model=CampaignPublic,
        operation_id=f"admin_{_action}_campaign",
        responses=_RULES | _ENDED,
        summary=f"{_action.capitalize()} a campaign",
    )
