"""The policy simulator: replay a period's stored sightings through the same `decide`, with the settings in
force or with proposed ones, and count what would have happened. Replaying sends and records nothing."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.core.const import EventKind, ResponseKind
from server.policy.decide import (
    NOT_YET,
    CampaignOption,
    History,
    PastPrompt,
    Person,
    Policy,
    Reason,
    Situation,
    decide,
    site_zone,
)

Progress = Callable[[int], None]  # called with the number of events replayed since the last call
PROGRESS_EVERY = 10_000


@dataclass(frozen=True, slots=True)
class Sighting:
    """A stored event, as the replay needs it."""

    event_id: int
    received_at: datetime
    observed_at: datetime
    site_id: int
    subscriber_id: uuid.UUID
    visit_id: int | None
    kind: str
    dwell_s: float


@dataclass(frozen=True, slots=True)
class SiteInfo:
    organisation_id: int
    timezone: str | None
    language: str
    quiet_hours: tuple[str, str] | None = None  # the site's own, local HH:MM start and end


@dataclass(frozen=True, slots=True)
class Answer:
    at: datetime
    kind: str  # dismissed | accepted
    campaign_id: int


@dataclass(frozen=True, slots=True)
class Exclusion:
    at: datetime
    site_id: int | None
    organisation_id: int | None


@dataclass(slots=True)
class Recording:
    """Everything a replay of [start, end) needs, loaded once; replays never touch the database."""

    start: datetime
    end: datetime
    policy: Policy
    prompt_ttl_s: int
    events: list[Sighting]  # in the order the server received them
    sites: dict[int, SiteInfo]
    campaigns: dict[int, list[CampaignOption]]  # by site
    people: dict[uuid.UUID, Person]  # without exclusions: those come in as they were made
    exclusions: dict[uuid.UUID, list[Exclusion]] = field(default_factory=dict)
    answers: dict[uuid.UUID, list[Answer]] = field(default_factory=dict)
    earlier: dict[uuid.UUID, list[PastPrompt]] = field(default_factory=dict)  # prompts before `start`


@dataclass(frozen=True, slots=True)
class Proposal:
    """Proposed settings: Policy fields, per-campaign CampaignOption fields, per-charity caps."""

    policy: Mapping[str, Any] = field(default_factory=dict)
    campaigns: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    organisations: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # org_prompts_per_week, ...

    def names(self) -> set[str]:
        """Every field the proposal sets, for validation."""
        return (
            set(self.policy)
            | {k for c in self.campaigns.values() for k in c}
            | {k for o in self.organisations.values() for k in o}
        )


POLICY_FIELDS = frozenset(f.name for f in fields(Policy))
CAMPAIGN_FIELDS = frozenset(
    {"status", "priority", "starts_at", "ends_at", "daily_from", "daily_until", "daily_budget"}
    | {"min_dwell_s", "max_dwell_s"}
)
ORGANISATION_FIELDS = frozenset({"org_prompts_per_week", "org_cooldown_days"})


@dataclass(frozen=True, slots=True)
class Replayed:
    event_id: int
    site_id: int
    subscriber_id: uuid.UUID
    reason: str
    campaign_id: int | None


@dataclass(slots=True)
class Tally:
    """What a replay decided: prompts per day, people reached, suppressions by reason, per campaign, site."""

    events: int = 0
    decisions: int = 0
    prompts: int = 0
    prompts_per_day: Counter[date] = field(default_factory=Counter)
    people: set[uuid.UUID] = field(default_factory=set)
    suppressed: Counter[str] = field(default_factory=Counter)
    per_campaign: Counter[int] = field(default_factory=Counter)
    per_site: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    log: list[Replayed] | None = None  # every decision, when asked for

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "decisions": self.decisions,
            "prompts": self.prompts,
            "people_reached": len(self.people),
            "prompts_per_day": {d.isoformat(): n for d, n in sorted(self.prompts_per_day.items())},
            "suppressed": dict(self.suppressed.most_common()),
            "per_campaign": {str(c): n for c, n in sorted(self.per_campaign.items())},
            "per_site": {str(s): dict(r.most_common()) for s, r in sorted(self.per_site.items())},
        }


def apply(recording: Recording, proposal: Proposal) -> tuple[Policy, dict[int, list[CampaignOption]]]:
    """The policy and campaigns as the proposal would have them."""
    policy = replace(recording.policy, **proposal.policy)
    campaigns: dict[int, list[CampaignOption]] = {}
    for site_id, options in recording.campaigns.items():
        changed = []
        for c in options:
            org = dict(proposal.organisations.get(c.organisation_id, {}))
            changed.append(replace(c, **(org | dict(proposal.campaigns.get(c.id, {})))))
        campaigns[site_id] = changed
    return policy, campaigns


def _zones(sites: Mapping[int, SiteInfo]) -> dict[int, ZoneInfo | None]:
    return {site_id: site_zone(info.timezone) for site_id, info in sites.items()}


def replay(
    recording: Recording,
    proposal: Proposal | None = None,
    *,
    sites: Iterable[int] | None = None,
    progress: Progress | None = None,
    keep_log: bool = False,
) -> Tally:
    """Replay the recording as the live path would have decided it (one decision per visit, a too-short
    dwell leaving the visit open, stale reports skipped); count only the decisions at `sites` (None: all)."""
    policy, campaigns = apply(recording, proposal or Proposal())
    zones = _zones(recording.sites)
    counted = None if sites is None else frozenset(sites)
    tally = Tally(log=[] if keep_log else None)
    given: dict[uuid.UUID, list[PastPrompt]] = {k: list(v) for k, v in recording.earlier.items()}
    budget: Counter[tuple[int, date]] = Counter()
    for prompts in recording.earlier.values():
        for p in prompts:
            budget[(p.campaign_id, p.local_day)] += 1
    visits: dict[int, list[Any]] = {}  # visit id -> [started, last_seen, dwell, decided]
    ttl = timedelta(seconds=recording.prompt_ttl_s)
    no_answers: list[Answer] = []
    no_exclusions: list[Exclusion] = []
    since_report = 0
    for event in recording.events:
        since_report += 1
        if progress is not None and since_report == PROGRESS_EVERY:
            progress(since_report)
            since_report = 0
        tally.events += 1
        key = event.visit_id if event.visit_id is not None else -event.event_id
        visit = visits.get(key)
        if visit is None:
            visit = visits[key] = [event.observed_at, event.observed_at, 0.0, False]
        visit[0] = min(visit[0], event.observed_at)
        visit[1] = max(visit[1], event.observed_at)
        visit[2] = max(visit[2], event.dwell_s, (visit[1] - visit[0]).total_seconds())
        if event.kind == EventKind.EXIT or visit[3] or event.received_at - event.observed_at > ttl:
            continue
        person = recording.people.get(event.subscriber_id)
        if person is None:
            continue
        now = event.received_at
        excluded = [x for x in recording.exclusions.get(event.subscriber_id, no_exclusions) if x.at < now]
        if excluded:
            person = replace(
                person,
                excluded_sites=frozenset(x.site_id for x in excluded if x.site_id is not None),
                excluded_organisations=frozenset(x.organisation_id for x in excluded if x.organisation_id),
            )
        site = recording.sites[event.site_id]
        zone = zones[event.site_id]
        here = campaigns.get(event.site_id, [])
        day = now.astimezone(zone).date() if zone is not None else None
        dismissed: dict[int, datetime] = {}
        accepted: set[int] = set()
        for a in recording.answers.get(event.subscriber_id, no_answers):
            if a.at >= now:  # an answer can only follow the decisions before it
                continue
            if a.kind == ResponseKind.ACCEPTED:
                accepted.add(a.campaign_id)
            else:
                dismissed[a.campaign_id] = max(a.at, dismissed.get(a.campaign_id, a.at))
        history = History(
            prompts=tuple(given.get(event.subscriber_id, ())),
            dismissed=dismissed,
            accepted=frozenset(accepted),
            budget_used={c.id: budget[(c.id, day)] for c in here} if day is not None else {},
        )
        situation = Situation(
            now, event.site_id, site.timezone, site.language, visit[2], policy, site.quiet_hours
        )
        decision = decide(person, history, here, situation)
        if decision.reason not in NOT_YET:
            visit[3] = True
        chosen, prompt_day = decision.campaign_id, decision.local_day
        if decision.prompted and chosen is not None and prompt_day is not None:
            org = next(c.organisation_id for c in here if c.id == chosen)
            given.setdefault(event.subscriber_id, []).append(PastPrompt(now, prompt_day, org, chosen))
            budget[(chosen, prompt_day)] += 1
        if counted is not None and event.site_id not in counted:
            continue
        tally.decisions += 1
        if tally.log is not None:
            tally.log.append(
                Replayed(
                    event.event_id, event.site_id, event.subscriber_id, decision.reason, decision.campaign_id
                )
            )
        tally.per_site[event.site_id][decision.reason] += 1
        if decision.prompted and chosen is not None and prompt_day is not None:
            tally.prompts += 1
            tally.prompts_per_day[prompt_day] += 1
            tally.people.add(event.subscriber_id)
            tally.per_campaign[chosen] += 1
        else:
            tally.suppressed[decision.reason] += 1
    if progress is not None and since_report:
        progress(since_report)
    return tally


def compare(
    recording: Recording,
    proposal: Proposal,
    *,
    sites: Iterable[int] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The current settings against the proposal, over the same recording."""
    chosen = None if sites is None else list(sites)
    current = replay(recording, None, sites=chosen, progress=progress)
    proposed = replay(recording, proposal, sites=chosen, progress=progress)
    return {
        "start": recording.start.isoformat(),
        "end": recording.end.isoformat(),
        "current": current.summary(),
        "proposed": proposed.summary(),
        "prompts_delta": proposed.prompts - current.prompts,
        "people_reached_delta": len(proposed.people) - len(current.people),
    }


REASONS: frozenset[str] = frozenset(r.value for r in Reason)


def proposal_from(
    policy: Mapping[str, Any],
    campaigns: Mapping[int, Mapping[str, Any]],
    organisations: Mapping[int, Mapping[str, Any]],
) -> Proposal:
    """A Proposal from request-shaped settings, dropping what is left unset (None)."""
    renamed = {"prompts_per_week": "org_prompts_per_week", "cooldown_days": "org_cooldown_days"}
    return Proposal(
        policy={k: v for k, v in policy.items() if v is not None},
        campaigns={cid: {k: v for k, v in c.items() if v is not None} for cid, c in campaigns.items()},
        organisations={
            oid: {renamed[k]: v for k, v in o.items() if v is not None} for oid, o in organisations.items()
        },
    )
