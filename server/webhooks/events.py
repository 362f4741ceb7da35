"""The webhook events the prompts' answers raise (others' events call `service.enqueue` themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from server.core.const import Outcome, ResponseKind
from server.prompts.models import PromptDecision
from server.webhooks.service import enqueue

# The answers a person gives, in the words the charity's systems get.
DECLINED: Final = {
    ResponseKind.DISMISSED: "not_now",
    ResponseKind.NOT_HERE: "not_here",
    ResponseKind.NOT_THIS_ORG: "not_this_charity",
}


def prompt_answered(
    session: Session, organisation_id: int, decision: PromptDecision, kind: str, now: datetime
) -> None:
    """`prompt.accepted` or `prompt.declined` (with the answer), naming the prompt's site, campaign and
    variant, never the person."""
    if decision.outcome != Outcome.PROMPTED:
        return
    data = {
        "site_id": decision.site_id,
        "campaign_id": decision.campaign_id,
        "variant_id": decision.variant_id,
        "prompted_at": decision.decided_at.isoformat(),
        "answered_at": now.isoformat(),
    }
    if kind == ResponseKind.ACCEPTED:
        enqueue(session, organisation_id, "prompt.accepted", data, at=now)
    elif kind in DECLINED:
        enqueue(
            session,
            organisation_id,
            "prompt.declined",
            data | {"answer": DECLINED[ResponseKind(kind)]},
            at=now,
        )
