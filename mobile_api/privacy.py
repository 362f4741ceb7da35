"""GET /mobile/v1/me/export and DELETE /mobile/v1/me: access, portability, withdrawal and erasure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from fastapi import APIRouter, Response
from pydantic import BaseModel

from mobile_api.schemas import (
    ExportAnswer,
    ExportConsent,
    ExportDecision,
    ExportDelivery,
    ExportEvent,
    ExportExclusion,
    ExportHistory,
    ExportPairedDevice,
    ExportPastPrompt,
    ExportProfile,
    ExportPublic,
    ExportPushChannel,
    ExportResponse,
    ExportVisit,
)
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.policy import history
from server.policy.models import PersonHistory
from server.presence.opt_in_notices import announce_withdrawal
from server.subscribers import export
from server.subscribers import service as subscribers

router = APIRouter()

M = TypeVar("M", bound=BaseModel)


def _rows(model: type[M], items: Iterable[object]) -> list[M]:
    return [model.model_validate(item, from_attributes=True) for item in items]


@router.get("/me/export", response_model=ExportPublic, operation_id="mobile_export")
def export_everything(
    subscriber: CurrentDevice, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ExportPublic:
    """Everything stored about you, as JSON to download (GDPR Art. 15 and 20)."""
    now = runtime.clock()
    data = export.everything(session, subscriber)
    response.headers["Content-Disposition"] = f'attachment; filename="nahbar-export-{now:%Y-%m-%d}.json"'
    response.headers["Cache-Control"] = "no-store"

    return ExportPublic(
        exported_at=now,
        notes=list(export.NOTES),
        profile=ExportProfile(
            id=str(subscriber.id),
            scopes=list(subscriber.scopes),
            language=subscriber.language,
            preferences=dict(subscriber.preferences or {}),
            rotation_exponent=subscriber.rotation_exponent,
            created_at=subscriber.created_at,
        ),
        consent_records=_rows(ExportConsent, data.consent_records),
        push_channels=_rows(ExportPushChannel, data.push_channels),
        exclusions=_rows(ExportExclusion, data.exclusions),
        proximity_events=_rows(ExportEvent, data.proximity_events),
        visits=_rows(ExportVisit, data.visits),
        decisions=_rows(ExportDecision, data.decisions),
        deliveries=_rows(ExportDelivery, data.deliveries),
        responses=_rows(ExportResponse, data.responses),
        test_devices=_rows(ExportPairedDevice, data.test_devices),
        history=_history(data.history),
    )


def _history(row: PersonHistory | None) -> ExportHistory | None:
    if row is None:
        return None
    return ExportHistory(
        prompts=[
            ExportPastPrompt(
                decided_at=p.at,
                local_day=p.local_day,
                organisation_id=p.organisation_id,
                campaign_id=p.campaign_id,
            )
            for p in history.prompts_of(row.prompts)
        ],
        dismissed=[ExportAnswer(campaign_id=c, at=at) for c, at in history.answers_of(row.dismissed).items()],
        accepted=[ExportAnswer(campaign_id=c, at=at) for c, at in history.answers_of(row.accepted).items()],
        updated_at=row.updated_at,
    )


@router.delete("/me", status_code=204, operation_id="mobile_withdraw_and_erase")
def withdraw_and_erase(subscriber: CurrentDevice, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Withdraw your consent and erase your data in one step (GDPR Art. 7(3) and 17).

    Prompts stop at once; your phone's identifier no longer resolves; the token stops working. Only the
    consent records remain, without any link to you, as proof that consent was given and withdrawn.
    """
    # First out of the index: from this moment no event resolves to this person, even before the commit.
    runtime.eid_index.remove(subscriber.id)
    subscribers.withdraw_and_erase(session, subscriber.id, runtime.clock())
    announce_withdrawal(session, subscriber.id)  # and out of every other worker's when this commits
    return Response(status_code=204)
