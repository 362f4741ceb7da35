"""The prompt decision as a pure function of (event, person, history, campaigns, caps, now).

The live path, the explain endpoint and the simulator all call `decide`; it never touches the database.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.core import const


class Reason(StrEnum):
    PROMPTED = "prompted"
    NOT_HERE = "not_here"  # the person said "not at this site": forever
    SITE_NO_TIMEZONE = "site_no_timezone"  # fail-closed: no local time, no quiet hours, no prompt
    QUIET_HOURS = "quiet_hours"  # inside the operator's quiet hours, in the site's time zone
    SITE_QUIET_HOURS = "site_quiet_hours"  # inside the site's own quiet hours (they widen the operator's)
    PERSON_QUIET_HOURS = "person_quiet_hours"  # inside the quiet hours the person set (site's local time)
    NO_ACTIVE_CAMPAIGN = "no_active_campaign"
    CAMPAIGN_QUIET_HOURS = "campaign_quiet_hours"  # every running campaign here is outside its daily hours
    NOT_THIS_ORG = "not_this_org"  # every running campaign here is from a charity the person excluded
    SCOPE_NOT_CONSENTED = "scope_not_consented"
    WALK_BY_FORBIDDEN = "walk_by_forbidden"  # a campaign decided on enter, where the operator allows none
    DWELL_TOO_SHORT = "dwell_too_short"  # not yet: a later event of the same visit may still prompt
    DWELL_TOO_LONG = "dwell_too_long"  # likely staff or a visiting relative
    GLOBAL_DAILY_CAP = "global_daily_cap"
    GLOBAL_WEEKLY_CAP = "global_weekly_cap"
    GLOBAL_MONTHLY_CAP = "global_monthly_cap"
    ORG_COOLDOWN = "org_cooldown"
    CAMPAIGN_ACCEPTED = "campaign_accepted"  # accepted once: never asked again
    CAMPAIGN_DISMISSED = "campaign_dismissed"
    CAMPAIGN_ONCE = "campaign_once"
    BUDGET_EXHAUSTED = "budget_exhausted"


# Reasons that do not settle the visit: the person may still stay long enough for a later event to prompt.
NOT_YET: frozenset[Reason] = frozenset({Reason.DWELL_TOO_SHORT})


@dataclass(frozen=True, slots=True)
class VariantOption:
    id: int
    language: str
    label: str


@dataclass(frozen=True, slots=True)
class CampaignOption:
    id: int
    organisation_id: int
    kind: str
    priority: int
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    daily_from: str | None  # local HH:MM
    daily_until: str | None
    variants: tuple[VariantOption, ...]
    daily_budget: int | None = None  # prompts per (site-local) day across the campaign's sites
    min_dwell_s: int | None = None
    max_dwell_s: int | None = None
    org_prompts_per_week: int | None = None  # the charity's own, stricter weekly cap
    org_cooldown_days: int | None = None  # the charity's own, longer cooldown


@dataclass(frozen=True, slots=True)
class OwnCaps:
    """The person's own caps (None: the platform's)."""

    per_day: int | None = None
    per_week: int | None = None
    per_month: int | None = None


@dataclass(frozen=True, slots=True)
class Person:
    subscriber_id: uuid.UUID
    scopes: frozenset[str]
    language: str
    excluded_sites: frozenset[int] = frozenset()  # "not at this site"
    excluded_organisations: frozenset[int] = frozenset()  # "not from this charity"
    quiet_hours: tuple[str, str] | None = None  # own quiet hours, local HH:MM start and end
    caps: OwnCaps = OwnCaps()


@dataclass(frozen=True, slots=True)
class PastPrompt:
    at: datetime
    local_day: date  # the calendar day at the site where it was given
    organisation_id: int
    campaign_id: int


@dataclass(frozen=True, slots=True)
class History:
    """What the person was asked and answered, and what the campaigns here already spent today."""

    prompts: tuple[PastPrompt, ...] = ()  # the last 30 days at least, and every campaign's last prompt
    dismissed: Mapping[int, datetime] = field(default_factory=dict)  # campaign -> latest dismissal
    accepted: frozenset[int] = frozenset()  # campaigns the person accepted
    budget_used: Mapping[int, int] = field(default_factory=dict)  # campaign -> prompts on today's local day


@dataclass(frozen=True, slots=True)
class Policy:
    """The operator's maxima and defaults; charities, campaigns and people may only be stricter."""

    max_per_day: int = const.DEFAULT_MAX_PER_DAY
    max_per_week: int = const.DEFAULT_MAX_PER_WEEK
    max_per_month: int = const.DEFAULT_MAX_PER_MONTH
    org_cooldown_days: int = const.DEFAULT_ORG_COOLDOWN_DAYS
    dismiss_cooldown_days: int = const.DEFAULT_DISMISS_COOLDOWN_DAYS
    min_dwell_s: int = const.DEFAULT_MIN_DWELL_S  # the least a campaign may ask; theirs that set none
    max_dwell_s: int = const.DEFAULT_MAX_DWELL_S
    allow_walk_by: bool = True  # campaigns with a minimum dwell of 0, decided on enter
    quiet_start: str = const.DEFAULT_QUIET_START
    quiet_end: str = const.DEFAULT_QUIET_END


@dataclass(frozen=True, slots=True)
class Situation:
    now: datetime
    site_id: int
    site_timezone: str | None
    site_language: str
    dwell_s: float = float(const.DEFAULT_MIN_DWELL_S)  # how long the person has been here this visit
    policy: Policy = Policy()
    site_quiet_hours: tuple[str, str] | None = None  # the site's own, local HH:MM start and end


class Check(NamedTuple):
    """One step of the chain: what was checked, whether anything was left, and what it removed. A named
    tuple: nine are made for every decision, and a frozen dataclass costs three times as much to make."""

    name: str
    passed: bool
    detail: str = ""
    remaining: tuple[int, ...] = ()  # campaign ids still eligible after this step


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    local_day: date | None = None
    campaign_id: int | None = None
    variant_id: int | None = None
    language: str | None = None
    checks: tuple[Check, ...] = ()

    @property
    def prompted(self) -> bool:
        return self.reason is Reason.PROMPTED


@functools.lru_cache(maxsize=1024)
def site_zone(name: str | None) -> ZoneInfo | None:
    """The zone by its IANA name, or None when unknown (cached: every decision asks)."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def in_daily_window(local: time, start: str | None, end: str | None) -> bool:
    """Whether local time falls in [start, end); a window may wrap past midnight; no window = all day.

    Read on the wall clock: the night the clocks go back, the repeated hour is in a window both times; the
    night they go forward, the skipped hour never comes."""
    if start is None or end is None:
        return True
    lo, hi = _hhmm(start), _hhmm(end)
    return lo <= local < hi if lo <= hi else (local >= lo or local < hi)


def in_quiet_hours(local: time, window: tuple[str, str] | None) -> bool:
    """Whether local time falls in a quiet window (start, end); None: no window, never quiet."""
    return window is not None and in_daily_window(local, *window)


def is_running(campaign: CampaignOption, now: datetime) -> bool:
    """Active, with something to show, and within its start and end (its daily hours are checked apart)."""
    return (
        campaign.status == "active"
        and bool(campaign.variants)
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


def paced_allowance(campaign: CampaignOption, local: time, policy: Policy) -> int | None:
    """How much of today's budget may be spent by now: linear over the campaign's daily hours (or the
    hours outside quiet hours), at least one prompt as soon as the window opens. None: no budget."""
    if campaign.daily_budget is None:
        return None
    start, end = (
        (campaign.daily_from, campaign.daily_until)
        if campaign.daily_from and campaign.daily_until
        else (policy.quiet_end, policy.quiet_start)
    )
    lo, hi, at = _minutes(_hhmm(start)), _minutes(_hhmm(end)), _minutes(local) + local.second / 60
    length = (hi - lo) % 1440 or 1440
    elapsed = (at - lo) % 1440
    if elapsed >= length:  # outside the window (the schedule check already keeps this away)
        elapsed = length
    return min(campaign.daily_budget, int(campaign.daily_budget * elapsed / length) + 1)


def pick_variant(campaign: CampaignOption, person: Person, site_language: str) -> VariantOption:
    """The person's language, else the site's, else any; A/B arms stable per person and campaign."""
    for language in (person.language, site_language):
        arms = sorted((v for v in campaign.variants if v.language == language), key=lambda v: v.label)
        if arms:
            break
    else:
        arms = sorted(campaign.variants, key=lambda v: (v.language, v.label))
    digest = hashlib.sha256(person.subscriber_id.bytes + campaign.id.to_bytes(8, "big")).digest()
    return arms[int.from_bytes(digest[:4], "big") % len(arms)]


def _strictest(*caps: int | None) -> int:
    return min(c for c in caps if c is not None)


def _quiet(at: str, whose: str, window: tuple[str, str] | None, quiet: bool) -> str:
    """Explain's detail of a quiet-hours check: the local time and the window it was held against."""
    if window is None:
        return f"{at}; the {whose} set no quiet hours"
    return f"{at}, {'inside' if quiet else 'outside'} the {whose}'s quiet hours {window[0]}-{window[1]}"


class _Chain:
    """Filters the candidate campaigns step by step and remembers every step for explain."""

    def __init__(self, candidates: list[CampaignOption]) -> None:
        self.candidates = candidates
        self.checks: list[Check] = []
        self._ids = tuple([c.id for c in candidates])  # of the candidates left; most steps keep them all

    def gate(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail, self._ids))
        return ok

    def keep(self, name: str, test: Callable[[CampaignOption], str | None]) -> bool:
        """Keep the campaigns `test` does not object to (it returns why not, or None)."""
        kept, objections = [], []
        for campaign in self.candidates:
            why = test(campaign)
            if why is None:
                kept.append(campaign)
            else:
                objections.append(f"campaign {campaign.id}: {why}")
        if objections:
            self.candidates = kept
            self._ids = tuple([c.id for c in kept])
        return self.gate(name, bool(kept), "; ".join(objections))


def decide(
    person: Person, history: History, campaigns: list[CampaignOption], situation: Situation
) -> Decision:
    """At most one campaign for this person now, or the reason why none, with every check made."""
    policy, now = situation.policy, situation.now
    chain = _Chain(list(campaigns))

    def stop(reason: Reason, day: date | None = None) -> Decision:
        return Decision(reason, local_day=day, checks=tuple(chain.checks))

    if not chain.gate(
        Reason.NOT_HERE, situation.site_id not in person.excluded_sites, "excluded by the person"
    ):
        return stop(Reason.NOT_HERE)
    zone = site_zone(situation.site_timezone)
    if not chain.gate(Reason.SITE_NO_TIMEZONE, zone is not None, f"time zone {situation.site_timezone!r}"):
        return stop(Reason.SITE_NO_TIMEZONE)
    assert zone is not None
    local_now = now.astimezone(zone)
    day, clock = local_now.date(), local_now.time()
    # Quiet hours are the union of the operator's window, the site's and (per campaign, below) the hours
    # outside a campaign's daily hours: a site or a campaign can widen the operator's window, never narrow it.
    at = f"{clock.hour:02d}:{clock.minute:02d} in {situation.site_timezone}"
    for reason, whose, window in (
        (Reason.QUIET_HOURS, "operator", (policy.quiet_start, policy.quiet_end)),
        (Reason.SITE_QUIET_HOURS, "site", situation.site_quiet_hours),
        (Reason.PERSON_QUIET_HOURS, "person", person.quiet_hours),  # the person's own, stricter still
    ):
        quiet = in_quiet_hours(clock, window)
        if not chain.gate(reason, not quiet, _quiet(at, whose, window, quiet)):
            return stop(reason, day)

    if not chain.keep(Reason.NO_ACTIVE_CAMPAIGN, lambda c: None if is_running(c, now) else "not running now"):
        return stop(Reason.NO_ACTIVE_CAMPAIGN, day)

    def campaign_quiet(c: CampaignOption) -> str | None:
        if in_daily_window(clock, c.daily_from, c.daily_until):
            return None
        return f"{at}, outside its daily hours {c.daily_from}-{c.daily_until}"

    if not chain.keep(Reason.CAMPAIGN_QUIET_HOURS, campaign_quiet):
        return stop(Reason.CAMPAIGN_QUIET_HOURS, day)
    excluded = person.excluded_organisations
    if not chain.keep(
        Reason.NOT_THIS_ORG, lambda c: "charity excluded" if c.organisation_id in excluded else None
    ):
        return stop(Reason.NOT_THIS_ORG, day)
    if not chain.keep(
        Reason.SCOPE_NOT_CONSENTED, lambda c: None if c.kind in person.scopes else f"no {c.kind} consent"
    ):
        return stop(Reason.SCOPE_NOT_CONSENTED, day)

    walk_by_off = "walk-by campaigns (decided on enter) are off on this platform"
    if not chain.keep(
        Reason.WALK_BY_FORBIDDEN,
        lambda c: walk_by_off if c.min_dwell_s == 0 and not policy.allow_walk_by else None,
    ):
        return stop(Reason.WALK_BY_FORBIDDEN, day)

    dwell = situation.dwell_s

    def min_dwell(c: CampaignOption) -> int:
        return effective_min_dwell(policy, c.min_dwell_s)

    def max_dwell(c: CampaignOption) -> int:
        return effective_max_dwell(policy, c.max_dwell_s)

    if not chain.keep(
        Reason.DWELL_TOO_LONG, lambda c: f"{dwell:.0f} s > {max_dwell(c)} s" if dwell > max_dwell(c) else None
    ):
        return stop(Reason.DWELL_TOO_LONG, day)
    if not chain.keep(
        Reason.DWELL_TOO_SHORT,
        lambda c: f"{dwell:.0f} s < {min_dwell(c)} s" if dwell < min_dwell(c) else None,
    ):
        return stop(Reason.DWELL_TOO_SHORT, day)

    # The caps over all charities: the strictest of the platform's, the person's and the deciding charity's.
    prompts = history.prompts
    today = sum(1 for p in prompts if p.local_day == day)
    week = sum(1 for p in prompts if p.at > now - timedelta(days=7))
    month = sum(1 for p in prompts if p.at > now - timedelta(days=30))
    per_day = _strictest(policy.max_per_day, person.caps.per_day)
    per_month = _strictest(policy.max_per_month, person.caps.per_month)
    if not chain.gate(Reason.GLOBAL_DAILY_CAP, today < per_day, f"{today} of {per_day} on {day}"):
        return stop(Reason.GLOBAL_DAILY_CAP, day)

    def week_cap(c: CampaignOption) -> str | None:
        cap = _strictest(policy.max_per_week, person.caps.per_week, c.org_prompts_per_week)
        return f"{week} of {cap} in 7 days" if week >= cap else None

    if not chain.keep(Reason.GLOBAL_WEEKLY_CAP, week_cap):
        return stop(Reason.GLOBAL_WEEKLY_CAP, day)
    if not chain.gate(Reason.GLOBAL_MONTHLY_CAP, month < per_month, f"{month} of {per_month} in 30 days"):
        return stop(Reason.GLOBAL_MONTHLY_CAP, day)

    last_by_org: dict[int, datetime] = {}
    last_by_campaign: dict[int, datetime] = {}
    for p in prompts:
        last_by_org[p.organisation_id] = max(p.at, last_by_org.get(p.organisation_id, p.at))
        last_by_campaign[p.campaign_id] = max(p.at, last_by_campaign.get(p.campaign_id, p.at))

    def cooldown(c: CampaignOption) -> str | None:
        days = max(policy.org_cooldown_days, c.org_cooldown_days or 0)
        last = last_by_org.get(c.organisation_id)
        return (
            f"charity prompted {last:%Y-%m-%d}, {days} days apart"
            if last and last > now - timedelta(days=days)
            else None
        )

    if not chain.keep(Reason.ORG_COOLDOWN, cooldown):
        return stop(Reason.ORG_COOLDOWN, day)
    if not chain.keep(
        Reason.CAMPAIGN_ACCEPTED, lambda c: "accepted before" if c.id in history.accepted else None
    ):
        return stop(Reason.CAMPAIGN_ACCEPTED, day)
    dismiss_days = timedelta(days=policy.dismiss_cooldown_days)

    def dismissed(c: CampaignOption) -> str | None:
        at = history.dismissed.get(c.id)
        return f"dismissed {at:%Y-%m-%d}" if at is not None and at > now - dismiss_days else None

    if not chain.keep(Reason.CAMPAIGN_DISMISSED, dismissed):
        return stop(Reason.CAMPAIGN_DISMISSED, day)

    def once(c: CampaignOption) -> str | None:
        # Once, unless the person dismissed it since (and that dismissal's 180 days are over).
        last, answer = last_by_campaign.get(c.id), history.dismissed.get(c.id)
        return f"prompted {last:%Y-%m-%d}" if last is not None and (answer is None or answer < last) else None

    if not chain.keep(Reason.CAMPAIGN_ONCE, once):
        return stop(Reason.CAMPAIGN_ONCE, day)

    def budget(c: CampaignOption) -> str | None:
        allowed = paced_allowance(c, clock, policy)
        used = history.budget_used.get(c.id, 0)
        return (
            f"{used} of {allowed} paced (budget {c.daily_budget})"
            if allowed is not None and used >= allowed
            else None
        )

    if not chain.keep(Reason.BUDGET_EXHAUSTED, budget):
        return stop(Reason.BUDGET_EXHAUSTED, day)

    never = datetime.min.replace(tzinfo=now.tzinfo)
    chosen = min(chain.candidates, key=lambda c: (-c.priority, last_by_campaign.get(c.id, never), c.id))
    variant = pick_variant(chosen, person, situation.site_language)
    chain.gate(Reason.PROMPTED, True, f"campaign {chosen.id}, variant {variant.id} ({variant.language})")
    return Decision(Reason.PROMPTED, day, chosen.id, variant.id, variant.language, tuple(chain.checks))


def effective_min_dwell(policy: Policy, campaign_min_dwell_s: int | None) -> int:
    """Seconds a person must have been here before this campaign may ask: 0 for a walk-by campaign (decided
    on enter; whether it may run is the operator's), else its own minimum, never below the platform's."""
    if campaign_min_dwell_s == 0:
        return 0
    return max(policy.min_dwell_s, campaign_min_dwell_s or 0)


def effective_max_dwell(policy: Policy, campaign_max_dwell_s: int | None) -> int:
    """Beyond this dwell a person is likely staff or a visiting relative: the stricter of the two limits."""
    return _strictest(policy.max_dwell_s, campaign_max_dwell_s)


def dwell_marks(policy: Policy, campaigns: Iterable[tuple[int | None, int | None]]) -> tuple[float, ...]:
    """The dwells at which a gateway reports a sighting so these campaigns (min, max dwell) are decided the
    moment they may be: each one's minimum dwell (0 is decided on enter: no mark) and its staff limit."""
    marks: set[float] = set()
    for min_dwell_s, max_dwell_s in campaigns:
        if min_dwell_s == 0 and not policy.allow_walk_by:
            continue  # it will not run
        marks.add(float(effective_max_dwell(policy, max_dwell_s)))
        if (least := effective_min_dwell(policy, min_dwell_s)) > 0:
            marks.add(float(least))
    return tuple(sorted(marks))
