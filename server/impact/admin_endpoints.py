"""/admin/api/v1/organisations/{org_id}/impact: the funnel, suppressions, variant results, CSV exports,
the retention's daily aggregates, open-data settings and the confirmation secret."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from server.api.deps import CurrentAdmin, OrganisationId, RuntimeDep, SessionDep
from server.impact import confirmations, export, open_data, service
from server.impact.schemas import (
    ConfirmationSecretPublic,
    DailyAggregatePublic,
    Funnel,
    ImpactQuery,
    OpenDataSettingsPublic,
    OpenDataSettingsUpdate,
    Suppressions,
    VariantReport,
)

router = APIRouter(prefix="/organisations/{org_id}", tags=["admin: impact"])

SiteFilter = Annotated[int | None, Query(description="Only this site")]
CampaignFilter = Annotated[int | None, Query(description="Only this campaign")]
VariantFilter = Annotated[int | None, Query(description="Only this variant")]
Since = Annotated[date | None, Query(description="First local day (default: 29 days before until)")]
Until = Annotated[date | None, Query(description="Last local day, inclusive (default: today)")]


def _query(
    org_id: int,
    site_id: int | None,
    campaign_id: int | None,
    variant_id: int | None,
    since: date | None,
    until: date | None,
) -> ImpactQuery:
    return ImpactQuery(
        organisation_id=org_id,
        site_id=site_id,
        campaign_id=campaign_id,
        variant_id=variant_id,
        since=since,
        until=until,
    )


@router.get("/impact/funnel", response_model=Funnel, operation_id="admin_impact_funnel")
def funnel(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    campaign_id: CampaignFilter = None,
    variant_id: VariantFilter = None,
    since: Since = None,
    until: Until = None,
) -> Funnel:
    """Passers-by seen, eligible, prompted, delivered, opened, accepted, declined, confirmed: totals, steps
    and a series per local day (at most 366 days)."""
    query = _query(org_id, site_id, campaign_id, variant_id, since, until)
    return service.funnel(session, principal, query, runtime.clock())


@router.get("/impact/suppressions", response_model=Suppressions, operation_id="admin_impact_suppressions")
def suppressions(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    since: Since = None,
    until: Until = None,
) -> Suppressions:
    """Visits not prompted by reason code, one count per visit, with a series per day."""
    query = _query(org_id, site_id, None, None, since, until)
    return service.suppressions(session, principal, query, runtime.clock())


@router.get("/impact/variants", response_model=VariantReport, operation_id="admin_impact_variants")
def variants(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    campaign_id: CampaignFilter = None,
    since: Since = None,
    until: Until = None,
) -> VariantReport:
    """Acceptance per variant with 95% intervals, and each A/B pair compared in plain words."""
    query = _query(org_id, site_id, campaign_id, None, since, until)
    return service.variants(session, principal, query, runtime.clock())


@router.get(
    "/impact/daily-aggregates",
    response_model=list[DailyAggregatePublic],
    operation_id="admin_impact_daily_aggregates",
)
def daily_aggregates(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    since: Since = None,
    until: Until = None,
) -> list[DailyAggregatePublic]:
    """The retention job's counts per site and day: events, visits, prompts, suppressed decisions."""
    query = _query(org_id, site_id, None, None, since, until)
    return service.daily_aggregates(session, principal, query, runtime.clock())


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8 with a byte order mark"}
}


def _download(rows: object, name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,  # type: ignore[arg-type]
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get(
    "/impact/funnel.csv",
    response_class=StreamingResponse,
    responses=_CSV,
    operation_id="admin_impact_funnel_csv",
)
def funnel_csv(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    campaign_id: CampaignFilter = None,
    variant_id: VariantFilter = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """The funnel per site and day as CSV (up to ten years, streamed)."""
    query = _query(org_id, site_id, campaign_id, variant_id, since, until)
    service.check(session, principal, query)
    first, last = service.span(query, runtime.clock(), export.MAX_EXPORT_DAYS)
    rows = export.funnel_csv(runtime.sessions, query, first, last)
    return _download(rows, f"funnel-{org_id}-{first}-{last}.csv")


@router.get(
    "/impact/suppressions.csv",
    response_class=StreamingResponse,
    responses=_CSV,
    operation_id="admin_impact_suppressions_csv",
)
def suppressions_csv(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    site_id: SiteFilter = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """Visits not prompted per site, day and reason as CSV (up to ten years, streamed)."""
    query = _query(org_id, site_id, None, None, since, until)
    service.check(session, principal, query)
    first, last = service.span(query, runtime.clock(), export.MAX_EXPORT_DAYS)
    rows = export.suppressions_csv(runtime.sessions, query, first, last)
    return _download(rows, f"suppressions-{org_id}-{first}-{last}.csv")


@router.get("/open-data", response_model=OpenDataSettingsPublic, operation_id="admin_open_data_settings")
def open_data_settings(
    org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> OpenDataSettingsPublic:
    """The open-data licence and title, the sites that publish, and the public URLs to hand out."""
    return open_data.settings_of(session, principal, org_id, runtime.settings.public_url)


@router.put(
    "/open-data", response_model=OpenDataSettingsPublic, operation_id="admin_update_open_data_settings"
)
def update_open_data_settings(
    org_id: OrganisationId,
    body: OpenDataSettingsUpdate,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> OpenDataSettingsPublic:
    """Set the licence (an SPDX id; CC-BY-4.0 by default) and title (editors)."""
    return open_data.update_settings(
        session, principal, org_id, body, runtime.settings.public_url, runtime.clock()
    )


class SecretGrace(BaseModel):
    grace_hours: int = Field(default=24, ge=0, le=168, description="How long the old secret still verifies")


@router.post(
    "/confirmation-secret",
    status_code=201,
    response_model=ConfirmationSecretPublic,
    operation_id="admin_set_confirmation_secret",
)
def set_confirmation_secret(
    org_id: OrganisationId,
    principal: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    body: SecretGrace | None = None,
) -> ConfirmationSecretPublic:
    """Switch confirmations on, or rotate their secret (shown once; editors)."""
    grace = timedelta(hours=(body or SecretGrace()).grace_hours)
    url = f"{runtime.settings.public_url.rstrip('/')}/impact/v1/confirmations"
    secret = runtime.settings.secret_key.get_secret_value()
    return confirmations.set_secret(session, principal, org_id, secret, grace, url, runtime.clock())


@router.delete("/confirmation-secret", status_code=204, operation_id="admin_delete_confirmation_secret")
def delete_confirmation_secret(org_id: OrganisationId, principal: CurrentAdmin, session: SessionDep) -> None:
    """Switch confirmations off (editors)."""
    confirmations.delete_secret(session, principal, org_id)
