"""Loads what the decision needs (campaigns, caps, the person's history) and takes the person's lock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    case,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core import const, direct
from server.core.const import SUSPENDED, Outcome, ResponseKind
from server.core.direct import Query
from server.core.listparam import in_list
from server.policy.decide import CampaignOption, OwnCaps, PastPrompt, Person, Policy, VariantOption
from server.policy.simulate import Answer, Recording, Sighting, SiteInfo
from server.policy.simulate import Exclusion as ExclusionAt
from server.presence.models import ProximityEvent
from server.prompts.models import PromptDecision, PromptResponse
from server.sites.models import Site
from server.subscribers.models import Exclusion, Subscriber
from server.tenancy.models import Organisation, PlatformSettings


@dataclass(frozen=True, slots=True)
class PersonRow:
    """What the live path reads of a locked subscriber."""

    id: uuid.UUID
    scopes: list[str]
    language: str
    preferences: dict[str, Any] | None


# The live path's statements are built once: building a select costs more Python than executing its cached
# compiled form. Lists of ids are list parameters (`in_list`): one statement text whatever their length.
_PERSON = select(Subscriber.id, Subscriber.scopes, Subscriber.language, Subscriber.preferences).where(
    in_list(Subscriber.id, "ids")
)
_LOCK_PG = _PERSON.order_by(Subscriber.id).with_for_update(key_share=True)
_LOCK_SQLITE = update(Subscriber).where(in_list(Subscriber.id, "ids")).values(version=Subscriber.version)


def lock_queries(dialect: str, subscriber_ids: Iterable[uuid.UUID]) -> list[Query]:
    """Serialise decisions about these people until the transaction ends and read them: the statements, to
    run first among a batch's reads; the last one's rows are the people (`people_of`), those who no longer
    exist (withdrawn) missing.

    PostgreSQL: row locks taken in id order, so two batches with people in common cannot deadlock; FOR NO KEY
    UPDATE, not FOR UPDATE, because concurrent sightings' inserts hold FOR KEY SHARE on these rows through
    their foreign keys. SQLite: a write takes the database's single write lock first, so a deferred
    transaction cannot read and then fail to upgrade."""
    ids = {"ids": sorted(set(subscriber_ids))}
    if dialect == "postgresql":
        return [(_LOCK_PG, ids)]
    return [(_LOCK_SQLITE, ids), (_PERSON, ids)]


def people_of(rows: Iterable[Any]) -> dict[uuid.UUID, PersonRow]:
    return {row[0]: PersonRow(*row) for row in rows}


# A suspended charity's campaigns read as status "suspended": they do not run (nor in explain or a replay).
_STATUS = case((Organisation.suspended_at.is_not(None), literal(SUSPENDED)), else_=Campaign.status)
_CAMPAIGNS = (
    select(
        CampaignSite.site_id,
        Campaign.id,
        Campaign.organisation_id,
        Campaign.kind,
        Campaign.priority,
        _STATUS,
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
    .where(in_list(CampaignSite.site_id, "ids"))
    .order_by(CampaignSite.site_id, Campaign.id, CampaignVariant.id)
)
_ACTIVE_CAMPAIGNS = _CAMPAIGNS.where(Campaign.status == "active", Organisation.suspended_at.is_(None))


def campaigns_query(site_ids: Iterable[int], *, active_only: bool = True) -> Query:
    return (_ACTIVE_CAMPAIGNS if active_only else _CAMPAIGNS, {"ids": sorted(set(site_ids))})


def campaigns_at_sites(
    session: Session, site_ids: Iterable[int], *, active_only: bool = True
) -> dict[int, list[CampaignOption]]:
    """The campaigns at these sites with their charity's caps and their variants, in one query of plain
    columns; every site asked for has an entry."""
    query = campaigns_query(site_ids, active_only=active_only)
    return campaigns_of(direct.rows(session.connection(), *query), query[1]["ids"])


def campaigns_of(rows: Iterable[Any], site_ids: Iterable[int]) -> dict[int, list[CampaignOption]]:
    campaigns: dict[tuple[int, int], tuple[Any, ...]] = {}
    variants: dict[tuple[int, int], list[VariantOption]] = {}
    for row in rows:
        key = (row[0], row[1])
        campaigns.setdefault(key, tuple(row[1:15]))
        found = variants.setdefault(key, [])
        if row[15] is not None:
            found.append(VariantOption(row[15], row[16], row[17]))
    at_site: dict[int, list[CampaignOption]] = {site_id: [] for site_id in site_ids}
    for (site_id, campaign_id), c in campaigns.items():
        at_site[site_id].append(
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
                variants=tuple(variants[(site_id, campaign_id)]),
                daily_budget=c[9],
                min_dwell_s=c[10],
                max_dwell_s=c[11],
                org_prompts_per_week=c[12],
                org_cooldown_days=c[13],
            )
        )
    return at_site


def campaigns_at_site(session: Session, site_id: int, *, active_only: bool = True) -> list[CampaignOption]:
    return campaigns_at_sites(session, [site_id], active_only=active_only)[site_id]


@dataclass(slots=True)
class Histories:
    """The histories of several people, as `decide` needs them, and the day slots their prompts took."""

    prompts: dict[uuid.UUID, list[PastPrompt]]
    slots: dict[tuple[uuid.UUID, date], int]  # (person, local day) -> prompts given that day (slots taken)
    dismissed: dict[uuid.UUID, dict[int, datetime]]
    accepted: dict[uuid.UUID, set[int]]
    excluded_sites: dict[uuid.UUID, set[int]]
    excluded_organisations: dict[uuid.UUID, set[int]]


# One round trip for the three parts of a history; the first column says which part a row belongs to:
# (part, person, at, local day, day slot or excluded site, charity, campaign, answer).
_PROMPTS, _ANSWERS, _EXCLUSIONS = "p", "a", "x"
_HISTORY = union_all(
    select(
        literal(_PROMPTS).label("part"),
        PromptDecision.subscriber_id,
        PromptDecision.decided_at,
        PromptDecision.local_day,
        PromptDecision.day_slot,
        Campaign.organisation_id,
        PromptDecision.campaign_id,
        null().cast(String).label("answer"),
    )
    .outerjoin(Campaign, Campaign.id == PromptDecision.campaign_id)
    .where(in_list(PromptDecision.subscriber_id, "ids"), PromptDecision.outcome == Outcome.PROMPTED),
    select(
        literal(_ANSWERS),
        PromptDecision.subscriber_id,
        PromptResponse.at,
        null().cast(Date),
        null().cast(Integer),
        null().cast(Integer),
        PromptDecision.campaign_id,
        PromptResponse.kind,
    )
    .join(PromptDecision, PromptDecision.id == PromptResponse.decision_id)
    .where(
        in_list(PromptDecision.subscriber_id, "ids"),
        PromptDecision.campaign_id.is_not(None),
        # Comparisons, not a literal IN: an IN list is rendered per execution, so the statement could not
        # run directly (server.core.direct).
        or_(PromptResponse.kind == ResponseKind.DISMISSED, PromptResponse.kind == ResponseKind.ACCEPTED),
    ),
    select(
        literal(_EXCLUSIONS),
        Exclusion.subscriber_id,
        null().cast(PromptResponse.at.type),
        null().cast(Date),
        Exclusion.site_id,
        Exclusion.organisation_id,
        null().cast(Integer),
        null().cast(String),
    ).where(in_list(Exclusion.subscriber_id, "ids")),
)


def histories_query(subscriber_ids: Iterable[uuid.UUID]) -> Query:
    return (_HISTORY, {"ids": sorted(set(subscriber_ids))})


def histories(session: Session, subscriber_ids: Iterable[uuid.UUID]) -> Histories:
    """Every prompt these people were given (a handful a month each at most), their answers and exclusions,
    in one query whatever the number of people."""
    query = histories_query(subscriber_ids)
    return histories_of(direct.rows(session.connection(), *query) if query[1]["ids"] else [])


def histories_of(rows: Iterable[Any]) -> Histories:
    found = Histories(
        defaultdict(list),
        defaultdict(int),
        defaultdict(dict),
        defaultdict(set),
        defaultdict(set),
        defaultdict(set),
    )
    for part, person, at, day, number, org_id, campaign_id, answer in rows:
        if person is None:
            continue
        if part == _PROMPTS:
            if day is not None and number is not None:
                found.slots[(person, day)] += 1
            if day is not None and org_id is not None and campaign_id is not None:
                found.prompts[person].append(PastPrompt(at, day, org_id, campaign_id))
        elif part == _ANSWERS and campaign_id is not None:
            if answer == ResponseKind.ACCEPTED:
                found.accepted[person].add(campaign_id)
            else:
                latest = found.dismissed[person]
                latest[campaign_id] = max(at, latest.get(campaign_id, at))
        elif part == _EXCLUSIONS:
            if number is not None:
                found.excluded_sites[person].add(number)
            if org_id is not None:
                found.excluded_organisations[person].add(org_id)
    return found


# A day's prompts of the campaigns with a budget at these sites. By site, not by campaign: it needs no answer
# of the campaigns' query first, so both go in one round trip.
_BUDGETS_AT_SITES = (
    select(PromptDecision.local_day, PromptDecision.campaign_id, func.count())
    .where(
        PromptDecision.campaign_id.in_(
            select(CampaignSite.campaign_id)
            .join(Campaign, Campaign.id == CampaignSite.campaign_id)
            .where(in_list(CampaignSite.site_id, "sites"), Campaign.daily_budget.is_not(None))
        ),
        in_list(PromptDecision.local_day, "days"),
        PromptDecision.outcome == Outcome.PROMPTED,
    )
    .group_by(PromptDecision.local_day, PromptDecision.campaign_id)
)


def budgets_at_sites_query(days: Iterable[date], site_ids: Iterable[int]) -> Query:
    return (_BUDGETS_AT_SITES, {"days": sorted(set(days)), "sites": sorted(set(site_ids))})


def budgets_of(rows: Iterable[Any]) -> dict[tuple[date, int], int]:
    return {(day, cid): n for day, cid, n in rows if day is not None and cid is not None}


_POLICY = (
    select(
        PlatformSettings.max_prompts_per_day,
        PlatformSettings.max_prompts_per_week,
        PlatformSettings.max_prompts_per_month,
        PlatformSettings.min_org_cooldown_days,
        PlatformSettings.min_dwell_s,
        PlatformSettings.allow_walk_by,
    )
    .order_by(PlatformSettings.id)
    .limit(1)
)


POLICY_QUERY: Query = (_POLICY, {})


def policy(session: Session) -> Policy:
    """The operator's maxima and dwell rules in force (quiet hours and the dismissal cooldown are platform
    constants)."""
    return policy_of(direct.rows(session.connection(), *POLICY_QUERY))


def policy_of(rows: Sequence[Any]) -> Policy:
    per_day, per_week, per_month, cooldown, min_dwell, walk_by = rows[0] if rows else (1,) + (None,) * 5
    return Policy(
        max_per_day=_given(per_day, const.DEFAULT_MAX_PER_DAY),
        max_per_week=_given(per_week, const.DEFAULT_MAX_PER_WEEK),
        max_per_month=_given(per_month, const.DEFAULT_MAX_PER_MONTH),
        org_cooldown_days=_given(cooldown, const.DEFAULT_ORG_COOLDOWN_DAYS),
        min_dwell_s=_given(min_dwell, const.DEFAULT_MIN_DWELL_S),
        allow_walk_by=True if walk_by is None else bool(walk_by),
    )


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


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
        site_id: SiteInfo(org, zone, language, (quiet_start, quiet_end))
        for site_id, org, zone, language, quiet_start, quiet_end in session.execute(
            select(
                Site.id, Site.organisation_id, Site.timezone, Site.language, Site.quiet_start, Site.quiet_end
            )
        )
    }
    campaigns = campaigns_at_sites(session, sites, active_only=False)
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
