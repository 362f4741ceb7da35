"""What the person did with a prompt; "not here" and "not this charity" become exclusions at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from server.core.const import ResponseKind
from server.core.errors import NotFound
from server.impact import tally
from server.policy.service import record_answer
from server.prompts import repository as prompts
from server.prompts.models import PromptResponse
from server.subscribers import repository
from server.subscribers.models import Exclusion
from server.subscribers.service import add_exclusion
from server.webhooks import events


@dataclass(frozen=True, slots=True)
class Responded:
    response: PromptResponse
    exclusion: Exclusion | None
    created: bool


def respond(
    session: Session, subscriber_id: uuid.UUID, decision_id: int, kind: ResponseKind, now: datetime
) -> Responded:
    """Record the response once per (prompt, kind); a repeat returns the first one."""
    found = prompts.own_prompt(session, subscriber_id, decision_id)
    if found is None:
        raise NotFound(f"You were given no prompt with id {decision_id}; see /mobile/v1/me/prompts.")
    decision, organisation_id = found
    repository.lock(session, subscriber_id)
    exclusion: Exclusion | None = None
    if kind is ResponseKind.NOT_HERE:
        exclusion, _ = add_exclusion(session, subscriber_id, site_id=decision.site_id, organisation_id=None)
    elif kind is ResponseKind.NOT_THIS_ORG:
        exclusion, _ = add_exclusion(session, subscriber_id, site_id=None, organisation_id=organisation_id)
    existing = prompts.find_response(session, decision.id, kind)
    if existing is not None:
        return Responded(existing, exclusion, created=False)
    response = PromptResponse(decision_id=decision.id, kind=kind, at=now)
    session.add(response)
    if decision.campaign_id is not None:
        record_answer(session, subscriber_id, decision.campaign_id, kind, now)
    session.flush()
    tally.responded(session, decision, kind, now)
    events.prompt_answered(session, organisation_id, decision, kind, now)
    return Responded(response, exclusion, created=True)
