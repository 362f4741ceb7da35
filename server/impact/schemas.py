"""The impact API's answers: the funnel with its daily series, suppressions, variant results, open data."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class ImpactQuery(BaseModel):
    """Which counts: an organisation's, narrowed to a site, a campaign or a variant, over local days."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: int
    site_id: int | None = None
    campaign_id: int | None = None
    variant_id: int | None = None
    since: date | None = Field(default=None, description="First local day (default: 29 days before until)")
    until: date | None = Field(default=None, description="Last local day, inclusive (default: today, UTC)")


class FunnelCounts(BaseModel):
    seen: int | None = Field(
        description="Visits of opted-in phones; null with a campaign or variant filter (a visit is seen "
        "before any campaign is chosen)"
    )
    eligible: int | None = Field(
        description="Visits that were prompted or held back only by a cap, cooldown or budget; null with a "
        "campaign or variant filter"
    )
    prompted: int
    delivered: int = Field(description="Prompts with at least one push sent (the app's inbox is not counted)")
    delivered_by_channel: dict[str, int] = Field(description="Pushes sent per channel: webpush, fcm, apns")
    opened: int
    accepted: int = Field(description="The call to action was followed")
    declined: int
    declined_by_answer: dict[str, int] = Field(description="not_now, not_here, not_this_charity")
    confirmed: int = Field(description="The charity confirmed the sign-up or donation")


class FunnelDay(FunnelCounts):
    day: date


class FunnelStep(BaseModel):
    key: str
    label_de: str
    label_en: str
    count: int | None
    share_of_previous: float | None = Field(description="count / the previous step's count, if both known")


class Funnel(BaseModel):
    organisation_id: int
    site_id: int | None
    campaign_id: int | None
    variant_id: int | None
    since: date
    until: date
    totals: FunnelCounts
    steps: list[FunnelStep]
    days: list[FunnelDay] = Field(description="One entry per local day of the range, zeros included")
    counted_until: datetime | None = Field(description="When the counts were last brought up to date")


class ReasonCount(BaseModel):
    reason: str
    label_de: str
    label_en: str
    count: int


class SuppressionDay(BaseModel):
    day: date
    counts: dict[str, int]


class Suppressions(BaseModel):
    """Visits not prompted, one count per visit under the reason that held last."""

    organisation_id: int
    site_id: int | None
    since: date
    until: date
    total: int
    reasons: list[ReasonCount]
    days: list[SuppressionDay]
    counted_until: datetime | None


class Rate(BaseModel):
    estimate: float | None
    low: float = Field(description="95% Wilson score interval")
    high: float


class VariantArm(BaseModel):
    variant_id: int
    language: str
    label: str
    prompted: int
    accepted: int
    confirmed: int
    acceptance: Rate


class VariantComparison(BaseModel):
    language: str
    variant_a: int
    variant_b: int
    label_a: str
    label_b: str
    difference: float | None = Field(description="Acceptance rate of b minus a")
    low: float = Field(description="95% interval of the difference (Newcombe's hybrid score)")
    high: float
    distinguishable: bool = Field(
        description="True only when each arm has the minimum sample and the interval excludes zero"
    )
    summary_en: str
    summary_de: str


class CampaignVariants(BaseModel):
    campaign_id: int
    campaign_name: str
    arms: list[VariantArm]
    comparisons: list[VariantComparison]


class VariantReport(BaseModel):
    organisation_id: int
    since: date
    until: date
    min_prompts_per_arm: int
    campaigns: list[CampaignVariants]


class DailyAggregatePublic(BaseModel):
    """The retention job's counts per site and day (raw sightings rolled up before their purge)."""

    site_id: int
    day: date
    events: int
    visits: int
    prompts: int
    suppressed: int


class OpenDataSettingsPublic(BaseModel):
    organisation_id: int
    licence: str
    title: str | None
    sites: list[int] = Field(description="Sites that publish (PATCH /sites/{id} with open_data)")
    csv_url: str
    json_url: str


class OpenDataSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    licence: str | None = Field(
        default=None, min_length=2, max_length=200, description="An SPDX id such as CC-BY-4.0"
    )
    title: str | None = Field(default=None, max_length=200)


class ConfirmationSecretPublic(BaseModel):
    organisation_id: int
    secret: str = Field(
        description="whsec_...: sign confirmations with a Standard Webhooks library; shown once"
    )
    previous_valid_until: datetime | None
    confirm_url: str


class ConfirmationState(BaseModel):
    enabled: bool
    since: datetime | None
    previous_valid_until: datetime | None = Field(
        description="Until then the secret before the last one verifies too"
    )


class ConfirmationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(min_length=8, max_length=100, description="The nahbar_ref your page was opened with")


class ConfirmationResult(BaseModel):
    status: str = Field(description="confirmed, or already_confirmed")
