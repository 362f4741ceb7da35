"""Retention rules: roll raw sightings up into daily aggregates per site and local day, then delete them.

Aggregates hold counts only (events, visits, prompts, suppressed decisions per site and day), no subscriber.
A local day is rolled up once it is over, and recomputed while it may still change: gateways deliver late
after an outage, so the last SETTLE_DAYS days are computed again on every run as long as their raw rows are
all still there. A day older than that is final. Every run writes the same numbers for the same rows, so
runs are idempotent and several workers may run at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from server.core.const import Outcome
from server.retention import repository

log = logging.getLogger("nahbar.retention")

SETTLE_DAYS: Final = 3  # late gateway deliveries (the outbox survives an outage) still count this long
MAX_BACKFILL_DAYS: Final = 366  # the first run rolls up at most this far back (bounds a bogus old timestamp)
# The longest local day (a DST change adds an hour): raw rows stay at least this long, so their day is over
# and rolled up before they go, even with a retention period of one day.
LONGEST_DAY: Final = timedelta(hours=26)


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    events: int
    visits: int
    decisions: int


def cutoff(session: Session, retention_days: int, now: datetime) -> datetime:
    """Raw rows observed before this moment go: the stricter of the deployment's and the operator's period."""
    platform_days = repository.platform_retention_days(session)
    days = min(retention_days, platform_days) if platform_days else retention_days
    return now - max(timedelta(days=days), LONGEST_DAY)


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("site time zone %r unknown; rolling its days up in UTC", name)
        return UTC


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def aggregate(session: Session, now: datetime, raw_cutoff: datetime) -> int:
    """Roll complete local days up into DailyAggregate rows; returns how many (site, day) rows it wrote."""
    oldest = repository.oldest_raw(session)
    groups: dict[str, list[int]] = defaultdict(list)
    for site_id, zone_name in repository.site_zones(session):
        groups[zone_name or "UTC"].append(site_id)
    written = 0
    for zone_name, site_ids in groups.items():
        zone = _zone(zone_name)
        today = now.astimezone(zone).date()
        last = repository.last_aggregated_day(session, site_ids)
        if last is not None:
            first = last - timedelta(days=SETTLE_DAYS)
        elif oldest is not None:
            first = max(oldest.astimezone(zone).date(), today - timedelta(days=MAX_BACKFILL_DAYS))
        else:
            continue  # nothing raw, nothing rolled up yet
        done = repository.aggregated_days(session, site_ids, first)
        day = first
        while day < today:
            start, end = _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)
            # Recompute only while late data may arrive and every raw row of the day is still there.
            again = end > now - timedelta(days=SETTLE_DAYS) and start >= raw_cutoff
            final = not again and last is not None and day <= last
            todo = [] if final else [s for s in site_ids if again or (s, day) not in done]
            written += _roll_up(session, todo, day, start, end)
            day += timedelta(days=1)
    return written


def _roll_up(session: Session, site_ids: list[int], day: date, start: datetime, end: datetime) -> int:
    if not site_ids:
        return 0
    events = repository.count_events(session, site_ids, start, end)
    visits = repository.count_visits(session, site_ids, start, end)
    decisions = repository.count_decisions(session, site_ids, start, end)
    rows: list[dict[str, Any]] = []
    for site_id in site_ids:
        row = {
            "site_id": site_id,
            "day": day,
            "events": events.get(site_id, 0),
            "visits": visits.get(site_id, 0),
            "prompts": decisions.get((site_id, Outcome.PROMPTED), 0),
            "suppressed": decisions.get((site_id, Outcome.SUPPRESSED), 0),
        }
        if row["events"] or row["visits"] or row["prompts"] or row["suppressed"]:
            rows.append(row)  # a day without anything leaves no row
    repository.upsert_aggregates(session, rows)
    return len(rows)


def purge_batch(session: Session, raw_cutoff: datetime, limit: int) -> PurgeCounts:
    """Delete up to `limit` raw events, `limit` visits and `limit` decisions (with their deliveries and
    responses) from before the cutoff, in this order."""
    events = repository.delete_events_before(session, raw_cutoff, limit)
    visits = repository.delete_visits_before(session, raw_cutoff, limit)
    decisions = repository.delete_decisions_before(session, raw_cutoff, limit)
    return PurgeCounts(events, visits, decisions)
