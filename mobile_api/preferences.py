"""/mobile/v1/me/preferences and /me/exclusions: what the person wants, and where and from whom not."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mobile_api.schemas import (
    Caps,
    ExclusionCreate,
    ExclusionPublic,
    ExclusionsPublic,
    PreferencesPublic,
    PreferencesUpdate,
    QuietHours,
    RowId,
)
from server.api.deps import CurrentDevice, RuntimeDep, SessionDep
from server.core.const import DEFAULT_MAX_PER_DAY, DEFAULT_MAX_PER_MONTH, DEFAULT_MAX_PER_WEEK
from server.subscribers import repository
from server.subscribers import service as subscribers
from server.subscribers.models import Subscriber

router = APIRouter()

PLATFORM_CAPS = Caps(
    per_day=DEFAULT_MAX_PER_DAY, per_week=DEFAULT_MAX_PER_WEEK, per_month=DEFAULT_MAX_PER_MONTH
)


def _public(subscriber: Subscriber) -> PreferencesPublic:
    stored = subscriber.preferences or {}
    quiet = stored.get("quiet_hours")
    return PreferencesPublic(
        scopes=list(subscriber.scopes),
        language=subscriber.language,
        quiet_hours=QuietHours.model_validate(quiet) if quiet else None,
        caps=Caps.model_validate(stored.get("caps") or {}),
        platform_caps=PLATFORM_CAPS,
    )


@router.get("/me/preferences", response_model=PreferencesPublic, operation_id="mobile_get_preferences")
def get_preferences(subscriber: CurrentDevice) -> PreferencesPublic:
    """Scopes, language, your own quiet hours and caps."""
    return _public(subscriber)


@router.patch("/me/preferences", response_model=PreferencesPublic, operation_id="mobile_update_preferences")
def update_preferences(
    body: PreferencesUpdate, subscriber: CurrentDevice, session: SessionDep, runtime: RuntimeDep
) -> PreferencesPublic:
    """Change only what you send. Caps may only be stricter than the platform's; a scope change is recorded
    as a new consent."""
    subscribers.update_preferences(session, subscriber, body.model_dump(exclude_unset=True), runtime.clock())
    return _public(subscriber)


def _exclusions(session: SessionDep, subscriber: Subscriber) -> ExclusionsPublic:
    return ExclusionsPublic(
        exclusions=[
            ExclusionPublic(
                id=exclusion.id,
                site_id=exclusion.site_id,
                organisation_id=exclusion.organisation_id,
                name=name,
                created_at=exclusion.created_at,
            )
            for exclusion, name in repository.exclusions(session, subscriber.id)
        ]
    )


@router.get("/me/exclusions", response_model=ExclusionsPublic, operation_id="mobile_list_exclusions")
def list_exclusions(subscriber: CurrentDevice, session: SessionDep) -> ExclusionsPublic:
    """The sites and charities you never want a prompt from."""
    return _exclusions(session, subscriber)


@router.post(
    "/me/exclusions",
    response_model=ExclusionPublic,
    status_code=201,
    operation_id="mobile_add_exclusion",
    responses={
        200: {"description": "You had excluded it already; the existing exclusion"},
        404: {"description": "No site or charity has that id (not_found)"},
    },
)
def add_exclusion(
    body: ExclusionCreate, subscriber: CurrentDevice, session: SessionDep, response: Response
) -> ExclusionPublic:
    """ "Not at this site" (site_id) or "not from this charity" (organisation_id): prompts stop at once."""
    exclusion, created = subscribers.add_exclusion(
        session, subscriber.id, site_id=body.site_id, organisation_id=body.organisation_id
    )
    if not created:
        response.status_code = 200
    name = next(n for e, n in repository.exclusions(session, subscriber.id) if e.id == exclusion.id)
    return ExclusionPublic(
        id=exclusion.id,
        site_id=exclusion.site_id,
        organisation_id=exclusion.organisation_id,
        name=name,
        created_at=exclusion.created_at,
    )


@router.delete("/me/exclusions/{exclusion_id}", status_code=204, operation_id="mobile_remove_exclusion")
def remove_exclusion(exclusion_id: RowId, subscriber: CurrentDevice, session: SessionDep) -> Response:
    """Allow prompts from that site or charity again."""
    subscribers.remove_exclusion(session, subscriber.id, exclusion_id)
    return Response(status_code=204)
