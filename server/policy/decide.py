"""The prompt decision as a pure function of (event, person, campaigns, caps, now).

The live path, the explain endpoint and the simulator all call `decide`; it never touches the database.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Reason(StrEnum):
    PROMPTED = "prompted"
    NOT_HERE = "not_here"  # the person said "not at this site": forever
    SITE_NO_TIMEZONE = "site_no_timezone"
    NO_ACTIVE_CAMPAIGN = "no_active_campaign"
    PERSON_QUIET_HOURS = "person_quiet_hours"  # inside the quiet hours the person set (site's local time)
    NOT_THIS_ORG = "not_this_org"  # every running campaign here is from a charity the person excluded
    SCOPE_NOT_CONSENTED = "scope_not_consented"
    GLOBAL_DAILY_CAP = "global_daily_cap"


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


@dataclass(frozen=True, slots=True)
class Person:
    subscriber_id: uuid.UUID
    scopes: frozenset[str]
    language: str
    prompts_today: int  # prompts already given on `local_day` (the site's calendar day)
    excluded_sites: frozenset[int] = frozenset()  # "not at this site"
    excluded_organisations: frozenset[int] = frozenset()  # "not from this charity"
    quiet_hours: tuple[str, str] | None = None  # own quiet hours, local HH:MM start and end


@dataclass(frozen=True, slots=True)
class Situation:
    now: datetime
    site_id: int
    site_timezone: str | None
    site_language: str
    max_per_day: int


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    local_day: date | None = None
    campaign_id: int | None = None
    variant_id: int | None = None
    language: str | None = None

    @property
    def prompted(self) -> bool:
        return self.reason is Reason.PROMPTED


def site_zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_daily_window(local: time, start: str | None, end: str | None) -> bool:
    """Whether local time falls in [start, end); a window may wrap past midnight; no window = all day."""
    if start is None or end is None:
        return True
    lo, hi = _hhmm(start), _hhmm(end)
    return lo <= local < hi if lo <= hi else (local >= lo or local < hi)


def is_running(campaign: CampaignOption, now: datetime, local: time) -> bool:
    return (
        campaign.status == "active"
        and bool(campaign.variants)
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and (campaign.ends_at is None or now < campaign.ends_at)
        and in_daily_window(local, campaign.daily_from, campaign.daily_until)
    )


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


def decide(person: Person, campaigns: list[CampaignOption], situation: Situation) -> Decision:
    """At most one campaign for this person now, or the reason why none."""
    if situation.site_id in person.excluded_sites:
        return Decision(Reason.NOT_HERE)
    zone = site_zone(situation.site_timezone)
    if zone is None:
        return Decision(Reason.SITE_NO_TIMEZONE)
    local_now = situation.now.astimezone(zone)
    day = local_now.date()
    if person.quiet_hours is not None and in_daily_window(local_now.time(), *person.quiet_hours):
        return Decision(Reason.PERSON_QUIET_HOURS, local_day=day)
    running = [c for c in campaigns if is_running(c, situation.now, local_now.time())]
    if not running:
        return Decision(Reason.NO_ACTIVE_CAMPAIGN, local_day=day)
    running = [c for c in running if c.organisation_id not in person.excluded_organisations]
    if not running:
        return Decision(Reason.NOT_THIS_ORG, local_day=day)
    consented = [c for c in running if c.kind in person.scopes]
    if not consented:
        return Decision(Reason.SCOPE_NOT_CONSENTED, local_day=day)
    if person.prompts_today >= situation.max_per_day:
        return Decision(Reason.GLOBAL_DAILY_CAP, local_day=day)
    chosen = min(consented, key=lambda c: (-c.priority, c.id))
    variant = pick_variant(chosen, person, situation.site_language)
    return Decision(Reason.PROMPTED, day, chosen.id, variant.id, variant.language)
