"""The impact a charity's gateways and campaigns have: funnel, suppressions, variant results.

Plain functions of (session, principal, query) returning pydantic models, for the admin API and pages alike.
Every count comes from ImpactDaily, which a purge or a person's erasure does not lower.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from server.core.const import ChannelKind, ResponseKind, Role
from server.core.errors import NotFound, RuleViolation
from server.impact import labels, repository, stats, tally
from server.impact.schemas import (
    CampaignVariants,
    DailyAggregatePublic,
    Funnel,
    FunnelCounts,
    FunnelDay,
    FunnelStep,
    ImpactQuery,
    Rate,
    ReasonCount,
    SuppressionDay,
    Suppressions,
    VariantArm,
    VariantComparison,
    VariantReport,
)
from server.policy.decide import Reason
from server.tenancy.scope import Principal
from server.webhooks.events import DECLINED

MAX_DAYS: Final = 366  # per answer; the CSV export goes further, a year at a time
DEFAULT_DAYS: Final = 30
PUSH_CHANNELS: Final = (ChannelKind.WEBPUSH.value, ChannelKind.FCM.value, ChannelKind.APNS.value)


def span(query: ImpactQuery, now: datetime, max_days: int = MAX_DAYS) -> tuple[date, date]:
    """The query's local days, defaulted and checked."""
    until = query.until or now.date()
    since = query.since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise RuleViolation("since must not be after until.", extra={"field": "since"})
    if (until - since).days + 1 > max_days:
        raise RuleViolation(
            f"At most {max_days} days at once; narrow since and until.", extra={"field": "since"}
        )
    return since, until


def check(session: Session, principal: Principal, query: ImpactQuery) -> None:
    """The caller sees the organisation, and the site, campaign and variant named are the organisation's."""
    principal.require(query.organisation_id, Role.VIEWER)
    if query.site_id is not None:
        site = repository.site_of(session, query.site_id)
        if site is None or site.organisation_id != query.organisation_id:
            raise NotFound(f"No site {query.site_id} in this organisation.")
    if query.campaign_id is not None:
        campaign = repository.campaign_of(session, query.campaign_id)
        if campaign is None or campaign.organisation_id != query.organisation_id:
            raise NotFound(f"No campaign {query.campaign_id} in this organisation.")
    if query.variant_id is not None:
        found = repository.variant_of(session, query.variant_id)
        if found is None or found[1] != query.organisation_id:
            raise NotFound(f"No variant {query.variant_id} in this organisation.")
        if query.campaign_id is not None and found[0].campaign_id != query.campaign_id:
            raise RuleViolation("That variant is not one of that campaign's.", extra={"field": "variant_id"})


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


class _Tally:
    """Counts of one day (or of the whole range) by metric and detail."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, metric: str, detail: str, n: int) -> None:
        self.by[(metric, detail)] += n

    def get(self, metric: str, detail: str = "") -> int:
        return self.by.get((metric, detail), 0)

    def sum(self, metric: str, details: Iterable[str] | None = None) -> int:
        if details is None:
            return sum(n for (m, _), n in self.by.items() if m == metric)
        return sum(self.get(metric, d) for d in details)

    def funnel(self, per_visit: bool) -> FunnelCounts:
        outcome = {d: n for (m, d), n in self.by.items() if m == tally.OUTCOME}
        declined = {word: self.get(tally.RESPONSE, kind) for kind, word in DECLINED.items()}
        return FunnelCounts(
            seen=self.get(tally.SEEN) if per_visit else None,
            eligible=sum(n for d, n in outcome.items() if d in labels.ELIGIBLE) if per_visit else None,
            prompted=outcome.get(Reason.PROMPTED, 0),
            delivered=self.get(tally.REACHED),
            delivered_by_channel={c: self.get(tally.DELIVERED, c) for c in PUSH_CHANNELS},
            opened=self.get(tally.RESPONSE, ResponseKind.OPENED),
            accepted=self.get(tally.RESPONSE, ResponseKind.ACCEPTED),
            declined=sum(declined.values()),
            declined_by_answer=declined,
            confirmed=self.get(tally.CONFIRMED),
        )


def _by_day(rows: Sequence[Any]) -> tuple[_Tally, dict[date, _Tally]]:
    total, daily = _Tally(), defaultdict[date, _Tally](_Tally)
    for day, _, _, _, metric, detail, n in rows:
        total.add(metric, detail, int(n))
        daily[day].add(metric, detail, int(n))
    return total, daily


def _steps(counts: FunnelCounts) -> list[FunnelStep]:
    values = [
        ("seen", counts.seen),
        ("eligible", counts.eligible),
        ("prompted", counts.prompted),
        ("delivered", counts.delivered),
        ("opened", counts.opened),
        ("accepted", counts.accepted),
        ("confirmed", counts.confirmed),
    ]
    steps: list[FunnelStep] = []
    previous: int | None = None
    for key, value in values:
        share = value / previous if value is not None and previous else None
        de, en = labels.STEPS[key]
        steps.append(FunnelStep(key=key, label_de=de, label_en=en, count=value, share_of_previous=share))
        previous = value if value is not None else previous
    return steps


def funnel(session: Session, principal: Principal, query: ImpactQuery, now: datetime) -> Funnel:
    """Passers-by seen, eligible, prompted, delivered, opened, accepted (or declined by answer), confirmed:
    totals, the steps with their shares, and one entry per day."""
    check(session, principal, query)
    since, until = span(query, now)
    rows = repository.counts(
        session,
        query.organisation_id,
        since,
        until,
        site_id=query.site_id,
        campaign_id=query.campaign_id,
        variant_id=query.variant_id,
    )
    per_visit = query.campaign_id is None and query.variant_id is None
    total, daily = _by_day(rows)
    totals = total.funnel(per_visit)
    days = [
        FunnelDay(day=day, **daily[day].funnel(per_visit).model_dump())
        if day in daily
        else _empty(day, per_visit)
        for day in _days(since, until)
    ]
    return Funnel(
        organisation_id=query.organisation_id,
        site_id=query.site_id,
        campaign_id=query.campaign_id,
        variant_id=query.variant_id,
        since=since,
        until=until,
        totals=totals,
        steps=_steps(totals),
        days=days,
        counted_until=repository.counted_until(session),
    )


def _empty(day: date, per_visit: bool) -> FunnelDay:
    return FunnelDay(day=day, **_Tally().funnel(per_visit).model_dump())


def suppressions(session: Session, principal: Principal, query: ImpactQuery, now: datetime) -> Suppressions:
    """Visits not prompted, by the reason that held last (one count per visit)."""
    if query.campaign_id is not None or query.variant_id is not None:
        raise RuleViolation(
            "Suppressions are counted per site: the policy holds a visit back before it picks a campaign. "
            "Leave out campaign_id and variant_id.",
            extra={"field": "campaign_id"},
        )
    check(session, principal, query)
    since, until = span(query, now)
    rows = repository.counts(
        session, query.organisation_id, since, until, site_id=query.site_id, metrics=[tally.OUTCOME]
    )
    totals: dict[str, int] = defaultdict(int)
    daily: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, _, _, _, _, reason, n in rows:
        if reason == Reason.PROMPTED or not n:
            continue
        totals[reason] += int(n)
        daily[day][reason] += int(n)
    reasons = [
        ReasonCount(reason=r, label_de=labels.reason_label(r)[0], label_en=labels.reason_label(r)[1], count=n)
        for r, n in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        if n
    ]
    return Suppressions(
        organisation_id=query.organisation_id,
        site_id=query.site_id,
        since=since,
        until=until,
        total=sum(totals.values()),
        reasons=reasons,
        days=[
            SuppressionDay(day=day, counts={r: n for r, n in sorted(daily[day].items()) if n})
            for day in _days(since, until)
        ],
        counted_until=repository.counted_until(session),
    )


def variants(session: Session, principal: Principal, query: ImpactQuery, now: datetime) -> VariantReport:
    """Each campaign's variants with their acceptance rates and intervals, and each pair of the same
    language compared, in plain words."""
    check(session, principal, query)
    since, until = span(query, now)
    rows = repository.counts(
        session,
        query.organisation_id,
        since,
        until,
        site_id=query.site_id,
        campaign_id=query.campaign_id,
        metrics=[tally.OUTCOME, tally.RESPONSE, tally.CONFIRMED],
    )
    counted: dict[int, _Tally] = defaultdict(_Tally)
    for _, _, _, variant_id, metric, detail, n in rows:
        counted[variant_id].add(metric, detail, int(n))
    campaigns = []
    for campaign, variants_of in repository.campaigns_with_variants(
        session, query.organisation_id, query.campaign_id
    ):
        arms = []
        for variant in variants_of:
            c = counted.get(variant.id, _Tally())
            prompted, accepted = (
                c.get(tally.OUTCOME, Reason.PROMPTED),
                c.get(tally.RESPONSE, ResponseKind.ACCEPTED),
            )
            rate = stats.wilson(accepted, prompted)
            arms.append(
                VariantArm(
                    variant_id=variant.id,
                    language=variant.language,
                    label=variant.label,
                    prompted=prompted,
                    accepted=accepted,
                    confirmed=c.get(tally.CONFIRMED),
                    acceptance=Rate(estimate=rate.estimate, low=rate.low, high=rate.high),
                )
            )
        campaigns.append(
            CampaignVariants(
                campaign_id=campaign.id, campaign_name=campaign.name, arms=arms, comparisons=_compare(arms)
            )
        )
    return VariantReport(
        organisation_id=query.organisation_id,
        since=since,
        until=until,
        min_prompts_per_arm=stats.MIN_PER_ARM,
        campaigns=campaigns,
    )


def _compare(arms: list[VariantArm]) -> list[VariantComparison]:
    """Every pair of variants in one language (A against B, ...), b's rate minus a's."""
    out = []
    for n, a in enumerate(arms):
        for b in arms[n + 1 :]:
            if a.language != b.language:
                continue
            difference = stats.newcombe(b.accepted, b.prompted, a.accepted, a.prompted)
            said = stats.verdict(a.label, b.label, a.prompted, b.prompted, difference)
            out.append(
                VariantComparison(
                    language=a.language,
                    variant_a=a.variant_id,
                    variant_b=b.variant_id,
                    label_a=a.label,
                    label_b=b.label,
                    difference=difference.estimate,
                    low=difference.low,
                    high=difference.high,
                    distinguishable=said.distinguishable,
                    summary_en=said.en,
                    summary_de=said.de,
                )
            )
    return out


def daily_aggregates(
    session: Session, principal: Principal, query: ImpactQuery, now: datetime
) -> list[DailyAggregatePublic]:
    """The retention job's rolled-up counts (events, visits, prompts, suppressed decisions) per site, day."""
    check(session, principal, query)
    since, until = span(query, now)
    return [
        DailyAggregatePublic(
            site_id=a.site_id,
            day=a.day,
            events=a.events,
            visits=a.visits,
            prompts=a.prompts,
            suppressed=a.suppressed,
        )
        for a in repository.daily_aggregates(session, query.organisation_id, since, until, query.site_id)
    ]
