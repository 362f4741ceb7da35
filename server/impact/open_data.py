"""A charity's open data: daily counts per site, for the sites that opted in, k-anonymised.

Four tables (passers-by seen, prompted, accepted, confirmed), each of sites by days with their totals, each
protected on its own (`disclosure.protect`): no cell below k = 5 is published, nor any from which one could
be worked out. No published number is the sum of others across tables, so the tables cannot be combined to
recover a cell. Only complete days are published. An export in which no cell reaches k publishes no counts
at all, only its description.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.const import ResponseKind, Role
from server.core.errors import NotFound, RuleViolation
from server.impact import disclosure, repository, tally
from server.impact.models import OpenDataSettings
from server.impact.schemas import OpenDataSettingsPublic, OpenDataSettingsUpdate
from server.policy.decide import Reason
from server.sites.models import Site
from server.tenancy.models import Organisation
from server.tenancy.scope import Principal

DEFAULT_LICENCE: Final = "CC-BY-4.0"
LICENCE_URLS: Final = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "DL-DE-BY-2.0": "https://www.govdata.de/dl-de/by-2-0",
    "DL-DE-ZERO-2.0": "https://www.govdata.de/dl-de/zero-2-0",
}
DEFAULT_DAYS: Final = 90
MAX_DAYS: Final = 92
# (column, metric, detail, description in English, in German)
METRICS: Final = (
    (
        "seen",
        tally.SEEN,
        "",
        "Passers-by with the app who were near the site (visits)",
        "Vorbeigehende mit App (Besuche)",
    ),
    (
        "prompted",
        tally.OUTCOME,
        Reason.PROMPTED.value,
        "Visits in which a prompt was shown",
        "Besuche mit Anfrage",
    ),
    (
        "accepted",
        tally.RESPONSE,
        ResponseKind.ACCEPTED.value,
        "Prompts whose call to action was followed",
        "Angenommene Anfragen",
    ),
    (
        "confirmed",
        tally.CONFIRMED,
        "",
        "Sign-ups or donations the charity confirmed",
        "Von der Organisation bestätigte Anmeldungen oder Spenden",
    ),
)
TOTAL: Final = "total"


def settings_of(
    session: Session, principal: Principal, organisation_id: int, base_url: str
) -> OpenDataSettingsPublic:
    principal.require(organisation_id, Role.VIEWER)
    return _public(session, organisation_id, base_url)


def _public(session: Session, organisation_id: int, base_url: str) -> OpenDataSettingsPublic:
    row = session.get(OpenDataSettings, organisation_id)
    org = session.get_one(Organisation, organisation_id)
    sites = list(
        session.scalars(
            select(Site.id)
            .where(Site.organisation_id == organisation_id, Site.open_data.is_(True))
            .order_by(Site.id)
        )
    )
    base = f"{base_url.rstrip('/')}/open-data/v1/{org.slug}"
    return OpenDataSettingsPublic(
        organisation_id=organisation_id,
        licence=row.licence if row else DEFAULT_LICENCE,
        title=row.title if row else None,
        sites=sites,
        csv_url=f"{base}/daily.csv",
        json_url=f"{base}/daily.json",
    )


def update_settings(
    session: Session,
    principal: Principal,
    organisation_id: int,
    body: OpenDataSettingsUpdate,
    base_url: str,
    now: datetime,
) -> OpenDataSettingsPublic:
    principal.require(organisation_id, Role.EDITOR)
    row = session.get(OpenDataSettings, organisation_id)
    if row is None:
        row = OpenDataSettings(organisation_id=organisation_id, licence=DEFAULT_LICENCE)
        session.add(row)
    changes = body.model_dump(exclude_unset=True)
    if "licence" in changes:
        if changes["licence"] is None:
            raise RuleViolation("licence cannot be empty.", extra={"field": "licence"})
        row.licence = changes["licence"].strip()
    if "title" in changes:
        row.title = (changes["title"] or "").strip() or None
    row.updated_at = now
    session.flush()
    return _public(session, organisation_id, base_url)


@dataclass(frozen=True, slots=True)
class Published:
    """What goes out: the description, and rows of cells where None is a suppressed cell."""

    organisation: Organisation
    licence: str
    title: str
    since: date
    until: date
    sites: list[tuple[int, str]]
    rows: list[dict[str, Any]]
    suppressed: int


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def build(
    session: Session,
    slug: str,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
    k: int = disclosure.K,
) -> Published:
    """The organisation's open data over complete local days (yesterday at the latest, UTC)."""
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        raise NotFound(f"No charity publishes open data as {slug!r}.")
    sites = [
        (s.id, s.name)
        for s in session.scalars(
            select(Site).where(Site.organisation_id == org.id, Site.open_data.is_(True)).order_by(Site.id)
        )
    ]
    if not sites:
        raise NotFound(f"{org.name} publishes no open data (no site has open data switched on).")
    last = now.date() - timedelta(days=1)
    until = min(until or last, last)
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until or (until - since).days + 1 > MAX_DAYS:
        raise RuleViolation(
            f"Ask for at most {MAX_DAYS} complete days, since before until.", extra={"field": "since"}
        )
    settings = session.get(OpenDataSettings, org.id)
    days = _days(since, until)
    row_of = {site_id: n for n, (site_id, _) in enumerate(sites)}
    column_of = {day: n for n, day in enumerate(days)}
    counts = repository.counts(
        session, org.id, since, until, metrics={m for _, m, _, _, _ in METRICS}, site_ids=row_of
    )
    cells: dict[str, dict[disclosure.Cell, int]] = {name: {} for name, *_ in METRICS}
    wanted = {(metric, detail): name for name, metric, detail, _, _ in METRICS}
    for day, site_id, _, _, metric, detail, n in counts:
        name = wanted.get((metric, detail))
        if name is not None:
            cell = (row_of[site_id], column_of[day])
            cells[name][cell] = cells[name].get(cell, 0) + int(n)
    tables = {name: disclosure.Table.of(len(sites), len(days), cells[name]) for name in cells}
    hidden = {name: disclosure.protect(table, k) for name, table in tables.items()}
    shown = any(len(hidden[name]) < len(tables[name].values) for name in tables)
    rows: list[dict[str, Any]] = []
    if shown:
        site_rows: list[tuple[int, tuple[int | None, str]]] = [*enumerate(sites), (len(sites), (None, TOTAL))]
        day_columns = [*((n, day.isoformat()) for n, day in enumerate(days)), (len(days), TOTAL)]
        for r, (site_id, site_name) in site_rows:
            for c, day_name in day_columns:
                row: dict[str, Any] = {
                    "day": day_name,
                    "site_id": site_id,
                    "site_name": site_name,
                }
                for name, table in tables.items():
                    row[name] = None if (r, c) in hidden[name] else table.values[(r, c)]
                rows.append(row)
    return Published(
        org,
        settings.licence if settings else DEFAULT_LICENCE,
        (settings.title if settings and settings.title else None) or f"{org.name}: Nahbar daily counts",
        since,
        until,
        sites,
        rows,
        sum(len(h) for h in hidden.values()),
    )


COLUMNS: Final = ["day", "site_id", "site_name", *(name for name, *_ in METRICS)]


def as_csv(published: Published) -> str:
    """UTF-8 CSV with a byte order mark; a suppressed cell is empty; 'total' rows hold the totals."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in published.rows:
        writer.writerow(["" if row[column] is None else row[column] for column in COLUMNS])
    return out.getvalue()


def as_document(published: Published, base_url: str, now: datetime) -> dict[str, Any]:
    """The JSON document: DCAT-style metadata, the data dictionary, the licence and the rows."""
    org = published.organisation
    base = f"{base_url.rstrip('/')}/open-data/v1/{org.slug}"
    licence_url = LICENCE_URLS.get(published.licence)
    dictionary = [
        {
            "name": "day",
            "type": "date or 'total'",
            "description": "Local day at the site (ISO 8601), or 'total' for the sum over all days",
        },
        {
            "name": "site_id",
            "type": "integer or null",
            "description": "The site; null in the rows of totals over all sites",
        },
        {"name": "site_name", "type": "string", "description": "The site's name, or 'total'"},
        *(
            {"name": name, "type": "integer or null", "description": en, "description_de": de}
            for name, _, _, en, de in METRICS
        ),
    ]
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
        },
        "@type": "dcat:Dataset",
        "dct:identifier": f"{base}/daily.json",
        "dct:title": published.title,
        "dct:description": (
            "Daily counts of the Nahbar prompts at the charity's sites: passers-by with the app, prompts "
            "shown, accepted and confirmed. No personal data. Counts below 5 are withheld (null), and so are "
            "as many others as it takes that none can be worked out from the totals."
        ),
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": org.name},
        "dct:license": licence_url or published.licence,
        "licence": published.licence,
        "dct:temporal": {
            "dcat:startDate": published.since.isoformat(),
            "dcat:endDate": published.until.isoformat(),
        },
        "dct:modified": now.isoformat(),
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dcat:downloadURL": f"{base}/daily.csv",
                "dcat:mediaType": "text/csv",
            },
            {
                "@type": "dcat:Distribution",
                "dcat:downloadURL": f"{base}/daily.json",
                "dcat:mediaType": "application/json",
            },
        ],
        "disclosure_control": {
            "k": disclosure.K,
            "method": "primary suppression of cells below k, complementary suppression until no withheld "
            "cell can be recomputed from row, column or grand totals",
            "withheld_cells": published.suppressed,
        },
        "data_dictionary": dictionary,
        "sites": [{"site_id": site_id, "site_name": name} for site_id, name in published.sites],
        "rows": published.rows,
    }
