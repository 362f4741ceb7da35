"""Loads what the decision needs (campaigns, caps, the person's history) and takes the person's lock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, cast

from sqlalchemy import Date, Table, Uuid, bindparam, case, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from server.campaigns.models import Campaign, CampaignSite, CampaignVariant
from server.core import const, direct
from server.core.bulk import insert_query, insert_rows
from server.core.const import SUSPENDED, Outcome, ResponseKind
from server.core.direct import Query
from server.core.listparam import in_list
from server.policy import history
from server.policy.decide import CampaignOption, OwnCaps, PastPrompt, Person, Policy, VariantOption
from server.policy.models import PersonHistory
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

    prompts: dict[uuid.UUID, list[PastPrompt]]  # grows with the batch's own prompts as they are decided
    stored: dict[uuid.UUID, tuple[PastPrompt, ...]]  # as read: what a write of the history starts from
    slots: dict[tuple[uuid.UUID, date], int]  # (person, local day) -> prompts given that day (slots taken)
    dismissed: dict[uuid.UUID, dict[int, datetime]]
    accepted: dict[uuid.UUID, set[int]]
    excluded_sites: dict[uuid.UUID, set[int]]
    excluded_organisations: dict[uuid.UUID, set[int]]


# A person's history is one row by primary key, and their exclusions a few rows by an index on the person.
# On PostgreSQL each person is looked up on their own (a nested loop over the ids, the lateral subquery kept
# apart by OFFSET 0), so that no plan, for the values given or the generic one of a prepared statement, can
# scan a table instead: the cost grows with the batch, never with the tables (a read of the raw decisions and
# responses switched to a scan of every prompt ever stored once a batch held about 16 people).
_HISTORY_COLUMNS = (
    PersonHistory.subscriber_id,
    PersonHistory.prompts,
    PersonHistory.dismissed,
    PersonHistory.accepted,
)
_EXCLUDED_COLUMNS = (Exclusion.subscriber_id, Exclusion.site_id, Exclusion.organisation_id)
_HISTORY = select(*_HISTORY_COLUMNS).where(in_list(PersonHistory.subscriber_id, "ids"))
_EXCLUDED = select(*_EXCLUDED_COLUMNS).where(in_list(Exclusion.subscriber_id, "ids"))


def _each(name: str, item: Any, column: str) -> Any:
    """PostgreSQL: the values of the list parameter `name` as rows of a one-column table `column`."""
    values = func.unnest(bindparam(name, type_=ARRAY(item))).table_valued(column)
    return values.render_derived(name=f"each_{column}")


def _per_person(columns: Sequence[Any], key: Any) -> Any:
    wanted = _each("ids", Uuid(), "person")
    found = select(*columns).where(key == wanted.c.person).offset(0).lateral("found")
    return select(*found.c).select_from(wanted).join(found, true())


_HISTORY_PG = _per_person(_HISTORY_COLUMNS, PersonHistory.subscriber_id)
_EXCLUDED_PG = _per_person(_EXCLUDED_COLUMNS, Exclusion.subscriber_id)


def histories_queries(dialect: str, subscriber_ids: Iterable[uuid.UUID]) -> list[Query]:
    """The two reads of these people's histories (rows for `histories_of`), to go in one round trip."""
    ids = {"ids": sorted(set(subscriber_ids))}
    if dialect == "postgresql":
        return [(_HISTORY_PG, ids), (_EXCLUDED_PG, ids)]
    return [(_HISTORY, ids), (_EXCLUDED, ids)]


def histories(session: Session, subscriber_ids: Iterable[uuid.UUID]) -> Histories:
    """These people's histories: what they were asked and answered, and their exclusions."""
    connection = session.connection()
    queries = histories_queries(connection.dialect.name, subscriber_ids)
    if not queries[0][1]["ids"]:
        return histories_of([], [])
    return histories_of(*direct.pipelined(connection, queries))


def histories_of(history_rows: Iterable[Any], exclusion_rows: Iterable[Any]) -> Histories:
    found = Histories(
        defaultdict(list),
        {},
        defaultdict(int),
        defaultdict(dict),
        defaultdict(set),
        defaultdict(set),
        defaultdict(set),
    )
    for person, prompts, dismissed, accepted in history_rows:
        given = history.prompts_of(prompts)
        found.stored[person] = tuple(given)
        found.prompts[person] = given
        for p in given:
            found.slots[(person, p.local_day)] += 1
        if dismissed:
            found.dismissed[person] = history.answers_of(dismissed)
        if accepted:
            found.accepted[person] = set(history.answers_of(accepted))
    for person, site_id, org_id in exclusion_rows:
        if site_id is not None:
            found.excluded_sites[person].add(site_id)
        if org_id is not None:
            found.excluded_organisations[person].add(org_id)
    return found


_person_history = cast(Table, PersonHistory.__table__)
_CONFLICT: Final = ["subscriber_id"]
_REWRITTEN: Final = ["prompts", "updated_at"]  # a prompt leaves the person's answers as they are


def history_row(subscriber_id: uuid.UUID, prompts: list[list[Any]], at: datetime) -> dict[str, Any]:
    """A row for `write_histories`: the person's prompts (compacted, in their JSON form) as of `at`."""
    return {
        "subscriber_id": subscriber_id,
        "prompts": prompts,
        "dismissed": {},
        "accepted": {},
        "updated_at": at,
    }


def write_histories_query(rows: list[dict[str, Any]]) -> Query:
    """PostgreSQL: `write_histories` as a query for the pipeline of a batch's writes."""
    return insert_query(_person_history, rows, conflict=_CONFLICT, update=_REWRITTEN)


def write_histories(session: Session, rows: list[dict[str, Any]]) -> None:
    """Set these people's prompts (rows of `history_row`), making their history rows where there are none."""
    insert_rows(session.connection(), _person_history, rows, conflict=_CONFLICT, update=_REWRITTEN)


def person_history(session: Session, subscriber_id: uuid.UUID) -> PersonHistory:
    """The person's history row, made (empty) if there is none yet."""
    row = session.get(PersonHistory, subscriber_id)
    if row is None:
        row = PersonHistory(subscriber_id=subscriber_id, prompts=[], dismissed={}, accepted={})
        session.add(row)
    return row


# A day's prompts of the campaigns with a budget at these sites. By site, not by campaign: it needs no answer
# of the campaigns' query first, so both go in one round trip.
_BUDGETED = (
    select(CampaignSite.campaign_id)
    .join(Campaign, Campaign.id == CampaignSite.campaign_id)
    .where(in_list(CampaignSite.site_id, "sites"), Campaign.daily_budget.is_not(None))
)
_BUDGETS_AT_SITES = (
    select(PromptDecision.local_day, PromptDecision.campaign_id, func.count())
    .where(
        PromptDecision.campaign_id.in_(_BUDGETED),
        in_list(PromptDecision.local_day, "days"),
        PromptDecision.outcome == Outcome.PROMPTED,
    )
    .group_by(PromptDecision.local_day, PromptDecision.campaign_id)
)


def _budgets_pg() -> Any:
    """PostgreSQL: a count per (campaign, day) as a subquery run for each pair, through the index on
    (campaign, local day): a join of the campaigns with the decisions could be planned as a scan of every
    decision kept (the generic plan of the join above was, with 200,000 of them)."""
    campaigns = _BUDGETED.distinct().subquery("budgeted")
    days = _each("days", Date(), "day")
    spent = (
        select(func.count())
        .where(
            PromptDecision.campaign_id == campaigns.c.campaign_id,
            PromptDecision.local_day == days.c.day,
            PromptDecision.outcome == Outcome.PROMPTED,
        )
        .scalar_subquery()
    )
    return select(days.c.day, campaigns.c.campaign_id, spent).select_from(campaigns).join(days, true())


_BUDGETS_AT_SITES_PG = _budgets_pg()


def budgets_at_sites_query(dialect: str, days: Iterable[date], site_ids: Iterable[int]) -> Query:
    statement = _BUDGETS_AT_SITES_PG if dialect == "postgresql" else _BUDGETS_AT_SITES
    return (statement, {"days": sorted(set(days)), "sites": sorted(set(site_ids))})


def budgets_of(rows: Iterable[Any]) -> dict[tuple[date, int], int]:
    return {(day, cid): n for day, cid, n in rows if day is not None and cid is not None and n}


_POLICY = (
    select(
        PlatformSettings.max_prompts_per_day,
        PlatformSettings.max_prompts_per_week,
        PlatformSettings.max_prompts_per_month,
        PlatformSettings.min_org_cooldown_days,
        PlatformSettings.min_dwell_s,
        PlatformSettings.allow_walk_by,
        PlatformSettings.quiet_start,
        PlatformSettings.quiet_end,
    )
    .order_by(PlatformSettings.id)
    .limit(1)
)


POLICY_QUERY: Query = (_POLICY, {})


def policy(session: Session) -> Policy:
    """The operator's maxima, dwell rules and quiet hours in force (the dismissal cooldown is a platform
    constant)."""
    return policy_of(direct.rows(session.connection(), *POLICY_QUERY))


def policy_of(rows: Sequence[Any]) -> Policy:
    row = rows[0] if rows else (None,) * 8
    per_day, per_week, per_month, cooldown, min_dwell, walk_by, quiet_start, quiet_end = row
    return Policy(
        max_per_day=_given(per_day, const.DEFAULT_MAX_PER_DAY),
        max_per_week=_given(per_week, const.DEFAULT_MAX_PER_WEEK),
        max_per_month=_given(per_month, const.DEFAULT_MAX_PER_MONTH),
        org_cooldown_days=_given(cooldown, const.DEFAULT_ORG_COOLDOWN_DAYS),
        min_dwell_s=_given(min_dwell, const.DEFAULT_MIN_DWELL_S),
        allow_walk_by=True if walk_by is None else bool(walk_by),
        quiet_start=quiet_start or const.DEFAULT_QUIET_START,
        quiet_end=quiet_end or const.DEFAULT_QUIET_END,
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
    # What the people's histories keep of what the retention purge deleted: earlier prompts and answers.
    for subscriber_id, prompts, dismissed, accepted in session.execute(
        select(
            PersonHistory.subscriber_id,
            PersonHistory.prompts,
            PersonHistory.dismissed,
            PersonHistory.accepted,
        ).where(PersonHistory.subscriber_id.in_(seen))
    ):
        known = {(p.at, p.campaign_id) for p in earlier[subscriber_id]}
        earlier[subscriber_id] += [
            p for p in history.prompts_of(prompts) if p.at < start and (p.at, p.campaign_id) not in known
        ]
        kept = [(ResponseKind.DISMISSED, dismissed), (ResponseKind.ACCEPTED, accepted)]
        answers[subscriber_id] += [
            Answer(at, kind, campaign_id)
            for kind, doc in kept
            for campaign_id, at in history.answers_of(doc).items()
            if Answer(at, kind, campaign_id) not in answers[subscriber_id]
        ]
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
