"""CSV downloads of the funnel and the suppressions: UTF-8 with a byte order mark (so spreadsheet programs
read umlauts right), one row per site and day, streamed a quarter at a time in a session of their own."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from server.impact import labels, repository, tally
from server.impact.schemas import ImpactQuery
from server.impact.service import PUSH_CHANNELS, _Tally
from server.policy.decide import Reason
from server.webhooks.events import DECLINED

BOM: Final = "\ufeff"
MAX_EXPORT_DAYS: Final = 3_660  # ten years
CHUNK_DAYS: Final = 92

FUNNEL_COLUMNS: Final = (
    ["day", "site_id", "site_name", "seen", "eligible", "prompted", "delivered"]
    + [f"delivered_{channel}" for channel in PUSH_CHANNELS]
    + ["opened", "accepted", "declined"]
    + [f"declined_{word}" for word in DECLINED.values()]
    + ["confirmed"]
)
SUPPRESSION_COLUMNS: Final = ["day", "site_id", "site_name", "reason", "reason_en", "reason_de", "visits"]


def _line(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def _chunks(since: date, until: date) -> Iterator[tuple[date, date]]:
    start = since
    while start <= until:
        end = min(until, start + timedelta(days=CHUNK_DAYS - 1))
        yield start, end
        start = end + timedelta(days=1)


def funnel_csv(
    sessions: sessionmaker[Session], query: ImpactQuery, since: date, until: date
) -> Iterator[str]:
    """The funnel per site and day (days without anything are left out); the caller checked the query."""
    per_visit = query.campaign_id is None and query.variant_id is None
    yield BOM + _line(list(FUNNEL_COLUMNS))
    for start, end in _chunks(since, until):
        with sessions() as session:
            names = {s.id: s.name for s in repository.sites(session, query.organisation_id)}
            rows = repository.counts(
                session,
                query.organisation_id,
                start,
                end,
                site_id=query.site_id,
                campaign_id=query.campaign_id,
                variant_id=query.variant_id,
            )
        cells: dict[tuple[date, int], _Tally] = defaultdict(_Tally)
        for day, site_id, _, _, metric, detail, n in rows:
            cells[(day, site_id)].add(metric, detail, int(n))
        for (day, site_id), counted in sorted(cells.items()):
            f = counted.funnel(per_visit)
            yield _line(
                [
                    day.isoformat(),
                    site_id,
                    names.get(site_id, ""),
                    _cell(f.seen),
                    _cell(f.eligible),
                    f.prompted,
                ]
                + [f.delivered]
                + [f.delivered_by_channel[c] for c in PUSH_CHANNELS]
                + [f.opened, f.accepted, f.declined]
                + [f.declined_by_answer[w] for w in DECLINED.values()]
                + [f.confirmed]
            )


def suppressions_csv(
    sessions: sessionmaker[Session], query: ImpactQuery, since: date, until: date
) -> Iterator[str]:
    """Visits not prompted per site, day and reason (one per visit)."""
    yield BOM + _line(SUPPRESSION_COLUMNS)
    for start, end in _chunks(since, until):
        with sessions() as session:
            names = {s.id: s.name for s in repository.sites(session, query.organisation_id)}
            rows = repository.counts(
                session, query.organisation_id, start, end, site_id=query.site_id, metrics=[tally.OUTCOME]
            )
        cells: dict[tuple[date, int, str], int] = defaultdict(int)
        for day, site_id, _, _, _, reason, n in rows:
            if reason != Reason.PROMPTED:
                cells[(day, site_id, reason)] += int(n)
        for (day, site_id, reason), n in sorted(cells.items()):
            if n:
                de, en = labels.reason_label(reason)
                yield _line([day.isoformat(), site_id, names.get(site_id, ""), reason, en, de, n])


def _cell(value: int | None) -> object:
    return "" if value is None else value
