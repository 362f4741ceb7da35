"""POST /mobile/v1/me/prompts/{decision_id}/responses: what the person did with a prompt."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mobile_api.schemas import PromptId, ResponseCreate, ResponsePublic
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.core.const import ResponseKind
from server.subscribers.responses import respond

router = APIRouter()


@router.post(
    "/me/prompts/{decision_id}/responses",
    response_model=ResponsePublic,
    status_code=201,
    operation_id="mobile_respond_to_prompt",
    responses={200: {"description": "This response was recorded before; the first one"}},
)
def respond_to_prompt(
    decision_id: PromptId,
    body: ResponseCreate,
    subscriber: CurrentDevice,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ResponsePublic:
    """Tell us what you did with a prompt. "not_here" and "not_this_org" stop prompts from that site or
    charity for good (undo with DELETE /mobile/v1/me/exclusions/{id})."""
    done = respond(session, subscriber.id, decision_id, ResponseKind(body.kind), runtime.clock())
    if not done.created:
        response.status_code = 200
    return ResponsePublic(
        id=done.response.id,
        decision_id=done.response.decision_id,
        kind=done.response.kind,
        at=done.response.at,
        exclusion_id=done.exclusion.id if done.exclusion is not None else None,
    )
