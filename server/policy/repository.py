"""Loads what the decision needs (campaigns, caps, the person's history) and takes the person's lock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core import const
from server.core.const import Outcome, ResponseKind
from server.policy.decide import CampaignOption, History, OwnCaps, PastPrompt, Person, Policy, VariantOption
from server.policy.simulate import Answer, Recording, Sighting, SiteInfo
from server.policy.simulate import Exclusion as ExclusionAt
from server.presence.models import ProximityEvent
from server.prompts.models import PromptDecision, PromptResponse
from server.sites.models import Site
from server.subscribers.models import Exclusion, Subscriber
from server.tenancy.models import Organisation, PlatformSettings


@dataclass(frozen=True, slots=True)
class Excluded:
    sites: frozenset[int]
    organisations: frozenset[int]


def lock_person(session: Session, subscriber_id: uuid.UUID) -> None:
    """Serialise decisions about one person until the transaction ends: a row lock on PostgreSQL, the
    database's single write lock on SQLite (taken by a write, so a deferred transaction cannot read first).

    FOR NO KEY UPDATE, not FOR UPDATE: the sighting's rows were inserted first, and their foreign keys hold
    FOR KEY SHARE on this row; FOR UPDATE would wait on those of concurrent sightings, and they on ours."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Subscriber.id).where(Subscriber.id == subscriber_id).with_for_update(key_share=True)
        )
    else:
        session.execute(
            update(Subscriber).where(Subscriber.id == subscriber_id).values(version=Subscriber.version)
        )


def campaigns_at_site(session: Session, site_id: int, *, active_only: bool = True) -> list[CampaignOption]:
    """The campaigns at a site with their charity's caps and their variants, in one query of plain columns."""
    query = (
        select(
            Campaign.id,
            Campaign.organisation_id,
            Campaign.kind,
            Campaign.priority,
            Campaign.status,
            Campaign.starts_at,
            Campaign.ends_at,
            Campaign.daily_from,
            Campaign.daily_until,
            Campaign.daily_budget,
            Campaign.min_dwell_s,
            Campaign.max_dwell_s,
            Organisation.prompts_per_week,
            Organisation.cooldown_days,
            CampaignVariant.id,
            CampaignVariant.language,
            CampaignVariant.label,
        )
        .join(CampaignSite, CampaignSite.campaign_id == Campaign.id)
        .join(Organisation, Organisation.id == Campaign.organisation_id)
        .outerjoin(CampaignVariant, CampaignVariant.campaign_id == Campaign.id)
        .where(CampaignSite.site_id == site_id)
        .order_by(Campaign.id, CampaignVariant.id)
    )
    if active_only:
        query = query.where(Campaign.status == "active")
    campaigns: dict[int, tuple[Any, ...]] = {}
    variants: dict[int, list[VariantOption]] = {}
    for row in session.execute(query):
        campaigns.setdefault(row[0], tuple(row[:14]))
        found = variants.setdefault(row[0], [])
        if row[14] is not None:
            found.append(VariantOption(row[14], row[15], row[16]))
    return [
        CampaignOption(
            id=c[0],
            organisation_id=c[1],
            kind=c[2],
            priority=c[3],
            status=c[4],
            starts_at=c[5],
            ends_at=c[6],
            daily_from=c[7],
            daily_until=c[8],
            variants=tuple(variants[cid]),
            daily_budget=c[9],
            min_dwell_s=c[10],
            max_dwell_s=c[11],
            org_prompts_per_week=c[12],
            org_cooldown_days=c[13],
        )
        for cid, c in campaigns.items()
    ]


def history(
    session: Session, subscriber_id: uuid.UUID, day: date | None, campaign_ids: Iterable[int]
) -> History:
    """Every prompt the person was given (a handful a month at most), their answers, and today's budgets."""
    prompts = session.execute(
        select(PromptDecision.decided_at, PromptDecision.local_day, Campaign.organisation_id, Campaign.id)
        .join(Campaign, Campaign.id == PromptDecision.campaign_id)
        .where(PromptDecision.subscriber_id == subscriber_id, PromptDecision.outcome == Outcome.PROMPTED)
    ).all()
    answers = session.execute(
        select(PromptResponse.kind, PromptResponse.at, PromptDecision.campaign_id)
        .join(PromptDecision, PromptDecision.id == PromptResponse.decision_id)
        .where(
            PromptDecision.subscriber_id == subscriber_id,
            PromptResponse.kind.in_([ResponseKind.DISMISSED, ResponseKind.ACCEPTED]),
        )
    ).all()
    dismissed: dict[int, datetime] = {}
    accepted: set[int] = set()
    for kind, at, campaign_id in answers:
        if campaign_id is None:
            continue
        if kind == ResponseKind.ACCEPTED:
            accepted.add(campaign_id)
        else:
            dismissed[campaign_id] = max(at, dismissed.get(campaign_id, at))
    return History(
        prompts=tuple(PastPrompt(at, ld, org, cid) for at, ld, org, cid in prompts if ld is not None),
        dismissed=dismissed,
        accepted=frozenset(accepted),
        budget_used=budget_used(session, day, campaign_ids) if day is not None else {},
    )


def budget_used(session: Session, day: date, campaign_ids: Iterable[int]) -> dict[int, int]:
    ids = list(campaign_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(PromptDecision.campaign_id, func.count())
        .where(
            PromptDecision.campaign_id.in_(ids),
            PromptDecision.local_day == day,
            PromptDecision.outcome == Outcome.PROMPTED,
        )
        .group_by(PromptDecision.campaign_id)
    ).all()
    return {cid: n for cid, n in rows if cid is not None}


def prompts_on_day(session: Session, subscriber_id: uuid.UUID, day: date) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PromptDecision)
            .where(
                PromptDecision.subscriber_id == subscriber_id,
                PromptDecision.local_day == day,
                PromptDecision.day_slot.is_not(None),
            )
        )
        or 0
    )


def platform_settings(session: Session) -> PlatformSettings:
    settings = session.scalar(select(PlatformSettings).limit(1))
    return settings if settings is not None else PlatformSettings(max_prompts_per_day=1)


def policy(session: Session) -> Policy:
    """The operator's maxima in force (quiet hours, dwell and dismissal cooldown are platform constants)."""
    s = platform_settings(session)
    return Policy(
        max_per_day=_given(s.max_prompts_per_day, const.DEFAULT_MAX_PER_DAY),
        max_per_week=_given(s.max_prompts_per_week, const.DEFAULT_MAX_PER_WEEK),
        max_per_month=_given(s.max_prompts_per_month, const.DEFAULT_MAX_PER_MONTH),
        org_cooldown_days=_given(s.min_org_cooldown_days, const.DEFAULT_ORG_COOLDOWN_DAYS),
    )


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def exclusions(session: Session, subscriber_id: uuid.UUID) -> Excluded:
    """The sites ("not here") and charities ("not this charity") the person excluded."""
    rows = session.execute(
        select(Exclusion.site_id, Exclusion.organisation_id).where(Exclusion.subscriber_id == subscriber_id)
    ).all()
    return Excluded(
        sites=frozenset(site for site, _ in rows if site is not None),
        organisations=frozenset(org for _, org in rows if org is not None),
    )


# --- The simulator's recording ----------------------------------------------------------------------------


def recording(session: Session, start: datetime, end: datetime, prompt_ttl_s: int) -> Recording:
    """A period's stored sightings with everything their replay needs, in a few set-based queries."""
    events = [
        Sighting(*row)
        for row in session.execute(
            select(
                ProximityEvent.id,
                ProximityEvent.received_at,
                ProximityEvent.observed_at,
                ProximityEvent.site_id,
                ProximityEvent.subscriber_id,
                ProximityEvent.visit_id,
                ProximityEvent.kind,
                ProximityEvent.dwell_s,
            )
            .where(ProximityEvent.received_at >= start, ProximityEvent.received_at < end)
            .order_by(ProximityEvent.received_at, ProximityEvent.id)
        )
    ]
    seen = select(ProximityEvent.subscriber_id).where(
        ProximityEvent.received_at >= start, ProximityEvent.received_at < end
    )
    sites = {
        site_id: SiteInfo(org, zone, language)
        for site_id, org, zone, language in session.execute(
            select(Site.id, Site.organisation_id, Site.timezone, Site.language)
        )
    }
    campaigns = {site_id: campaigns_at_site(session, site_id, active_only=False) for site_id in sites}
    people: dict[uuid.UUID, Person] = {}
    for subscriber_id, scopes, language, preferences in session.execute(
        select(Subscriber.id, Subscriber.scopes, Subscriber.language, Subscriber.preferences).where(
            Subscriber.id.in_(seen)
        )
    ):
        quiet = (preferences or {}).get("quiet_hours")
        caps = (preferences or {}).get("caps") or {}
        people[subscriber_id] = Person(
            subscriber_id,
            frozenset(scopes),
            language,
            quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
            caps=OwnCaps(caps.get("per_day"), caps.get("per_week"), caps.get("per_month")),
        )
    exclusions: dict[uuid.UUID, list[ExclusionAt]] = defaultdict(list)
    for subscriber_id, at, site_id, org_id in session.execute(
        select(
            Exclusion.subscriber_id, Exclusion.created_at, Exclusion.site_id, Exclusion.organisation_id
        ).where(Exclusion.subscriber_id.in_(seen))
    ):
        exclusions[subscriber_id].append(ExclusionAt(at, site_id, org_id))
    answers: dict[uuid.UUID, list[Answer]] = defaultdict(list)
    for subscriber_id, kind, at, campaign_id in session.execute(
        select(
            PromptDecision.subscriber_id, PromptResponse.kind, PromptResponse.at, PromptDecision.campaign_id
        )
        .join(PromptDecision, PromptDecision.id == PromptResponse.decision_id)
        .where(
            PromptDecision.subscriber_id.in_(seen),
            PromptDecision.campaign_id.is_not(None),
            PromptResponse.kind.in_([ResponseKind.DISMISSED, ResponseKind.ACCEPTED]),
        )
    ):
        if subscriber_id is not None and campaign_id is not None:
            answers[subscriber_id].append(Answer(at, kind, campaign_id))
    earlier: dict[uuid.UUID, list[PastPrompt]] = defaultdict(list)
    for subscriber_id, at, day, org_id, campaign_id in session.execute(
        select(
            PromptDecision.subscriber_id,
            PromptDecision.decided_at,
            PromptDecision.local_day,
            Campaign.organisation_id,
            Campaign.id,
        )
        .join(Campaign, Campaign.id == PromptDecision.campaign_id)
        .where(
            PromptDecision.subscriber_id.in_(seen),
            PromptDecision.outcome == Outcome.PROMPTED,
            PromptDecision.decided_at < start,
        )
    ):
        if day is not None and subscriber_id is not None:
            earlier[subscriber_id].append(PastPrompt(at, day, org_id, campaign_id))
    return Recording(
        start,
        end,
        policy(session),
        prompt_ttl_s,
        events,
        sites,
        campaigns,
        people,
        exclusions,
        answers,
        earlier,
    )


def organisation_sites(session: Session, organisation_id: int) -> list[int]:
    return list(session.scalars(select(Site.id).where(Site.organisation_id == organisation_id)))


def organisation_campaigns(session: Session, organisation_id: int) -> set[int]:
    return set(session.scalars(select(Campaign.id).where(Campaign.organisation_id == organisation_id)))
