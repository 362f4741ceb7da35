"""The live decisions of a batch of sightings. Everything they need is loaded once for the batch (the
people, locked by the caller, their histories, the sites' campaigns, today's budgets, the operator's maxima);
then each sighting is decided in order on what the earlier ones of the batch decided."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from server.core import direct
from server.core.direct import Query
from server.policy import history, repository
from server.policy.decide import (
    CampaignOption,
    Decision,
    History,
    OwnCaps,
    PastPrompt,
    Person,
    Policy,
    Situation,
    decide,
    site_zone,
)
from server.policy.repository import Histories, PersonRow
from server.sites.models import Site

# A recorded prompt, as the person's history keeps it: (person, decided at, local day, campaign).
Prompt = tuple[uuid.UUID, datetime, date, int]


@dataclass(frozen=True, slots=True)
class SiteRef:
    """What a decision needs to know of the site."""

    id: int
    timezone: str | None
    language: str
    name: str = ""  # for the decision's log line
    quiet_hours: tuple[str, str] | None = None  # the site's own, local HH:MM start and end

    @classmethod
    def of(cls, site: Site) -> SiteRef:
        return cls(site.id, site.timezone, site.language, site.name, (site.quiet_start, site.quiet_end))


def local_day(site: SiteRef, now: datetime) -> date | None:
    zone = site_zone(site.timezone)
    return now.astimezone(zone).date() if zone is not None else None


def as_person(row: PersonRow, found: Histories) -> Person:
    """The person as the policy sees them: scopes, language, exclusions and their own stricter settings."""
    preferences = row.preferences or {}
    quiet = preferences.get("quiet_hours")
    caps = preferences.get("caps") or {}
    return Person(
        row.id,
        frozenset(row.scopes),
        row.language,
        excluded_sites=frozenset(found.excluded_sites.get(row.id, ())),
        excluded_organisations=frozenset(found.excluded_organisations.get(row.id, ())),
        quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
        caps=OwnCaps(caps.get("per_day"), caps.get("per_week"), caps.get("per_month")),
    )


class DeciderLoad:
    """What a Decider for these people and moments needs, as queries that can go in one round trip with the
    batch's other reads (`queries`), and the Decider made of their answers (`decider`)."""

    def __init__(
        self, dialect: str, people: Iterable[uuid.UUID], moments: Iterable[tuple[SiteRef, datetime]]
    ) -> None:
        when = list(moments)
        days = {day for site, now in when if (day := local_day(site, now)) is not None}
        sites = {site.id for site, _ in when}
        self.queries: list[Query] = [
            *repository.histories_queries(dialect, people),
            repository.campaigns_query(sites),
            repository.budgets_at_sites_query(dialect, days, sites),
            repository.POLICY_QUERY,
        ]
        self._sites = sorted(sites)

    def decider(self, answers: Sequence[list[Any]], people: Iterable[PersonRow]) -> Decider:
        """`answers`: the rows of `queries`, in their order."""
        history_rows, exclusion_rows, campaign_rows, budget_rows, policy_rows = answers
        found = repository.histories_of(history_rows, exclusion_rows)
        return Decider(
            repository.policy_of(policy_rows),
            repository.campaigns_of(campaign_rows, self._sites),
            {row.id: as_person(row, found) for row in people},
            found,
            repository.budgets_of(budget_rows),
        )


class Decider:
    """Decides the sightings of one batch. Not shared between transactions: its state is the batch's."""

    def __init__(
        self,
        policy: Policy,
        campaigns: dict[int, list[CampaignOption]],
        people: dict[uuid.UUID, Person],
        found: Histories,
        budgets: dict[tuple[date, int], int],
    ) -> None:
        self._policy = policy
        self._campaigns = campaigns
        self._people = people
        self._found = found
        self._budgets = budgets
        self._charity_of = {c.id: c.organisation_id for here in campaigns.values() for c in here}

    @classmethod
    def load(
        cls, session: Session, people: Iterable[PersonRow], moments: Iterable[tuple[SiteRef, datetime]]
    ) -> Decider:
        """Load for these people (already locked, when the decisions will be recorded) and for decisions at
        these (site, time) moments: five queries in one round trip, whatever the batch's size."""
        rows = list(people)
        connection = session.connection()
        plan = DeciderLoad(connection.dialect.name, (row.id for row in rows), moments)
        return plan.decider(direct.pipelined(connection, plan.queries), rows)

    def decide(self, subscriber_id: uuid.UUID, site: SiteRef, now: datetime, dwell_s: float) -> Decision:
        """The decision for this person at this site now; a prompt counts at once for the later ones."""
        campaigns = self._campaigns.get(site.id, [])
        day = local_day(site, now)
        found = self._found
        history = History(
            prompts=tuple(found.prompts.get(subscriber_id, ())),
            dismissed=found.dismissed.get(subscriber_id, {}),
            accepted=frozenset(found.accepted.get(subscriber_id, ())),
            budget_used={c.id: self._budgets.get((day, c.id), 0) for c in campaigns} if day else {},
        )
        situation = Situation(
            now, site.id, site.timezone, site.language, dwell_s, self._policy, site.quiet_hours
        )
        decision = decide(self._people[subscriber_id], history, campaigns, situation)
        if decision.prompted and decision.local_day is not None and decision.campaign_id is not None:
            chosen = next(c for c in campaigns if c.id == decision.campaign_id)
            found.prompts[subscriber_id].append(
                PastPrompt(now, decision.local_day, chosen.organisation_id, chosen.id)
            )
            key = (decision.local_day, chosen.id)
            self._budgets[key] = self._budgets.get(key, 0) + 1
        return decision

    def take_slot(self, subscriber_id: uuid.UUID, day: date) -> int:
        """The next free (person, local day) slot for a prompt: the database's guard of the daily cap."""
        taken = self._found.slots[(subscriber_id, day)]
        self._found.slots[(subscriber_id, day)] = taken + 1
        return taken

    def history_rows(
        self, prompts: Iterable[Prompt], people: Mapping[uuid.UUID, datetime] | None = None
    ) -> list[dict[str, Any]]:
        """The history rows to write for these recorded prompts (`repository.write_histories`): each of their
        people's stored prompts with theirs, compacted. `people` (person -> moment) rewrites those too, with
        their stored prompts alone where no prompt of theirs is given: a prompt of theirs was planned, and
        written, but not recorded after all."""
        new: dict[uuid.UUID, list[PastPrompt]] = {person: [] for person in people or {}}
        for subscriber_id, at, day, campaign_id in prompts:
            new.setdefault(subscriber_id, []).append(
                PastPrompt(at, day, self._charity_of[campaign_id], campaign_id)
            )
        rows = []
        for subscriber_id, given in new.items():
            everything = (*self._found.stored.get(subscriber_id, ()), *given)
            latest = max((p.at for p in given), default=None)
            at = latest if latest is not None else (people or {})[subscriber_id]
            rows.append(repository.history_row(subscriber_id, history.prompts_doc(everything, at), at))
        return rows
