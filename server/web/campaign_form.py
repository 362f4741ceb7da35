"""The campaign form's fields to the admin API's campaign schemas and back: scalars, sites and a list of
texts (variants), whose rows are numbered as the request's list is, so an error lands on its row."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from server.campaigns.schemas import VariantPublic
from server.web.i18n import zone
from server.web.pages import Visit

SCALARS: Final = (
    "name",
    "kind",
    "priority",
    "starts_at",
    "ends_at",
    "daily_from",
    "daily_until",
    "cta_url",
    "daily_budget",
    "min_dwell_s",
    "max_dwell_s",
)
VARIANT_FIELDS: Final = ("language", "label", "title", "body", "cta_label")
TEXT_FIELDS: Final = ("title", "body", "cta_label")
MOMENTS: Final = ("starts_at", "ends_at")
REQUIRED: Final = ("name", "kind")
_ROW: Final = re.compile(r"^variants-(\d{1,2})-(language|label|title|body|cta_label)$")
MAX_ROWS: Final = 20


def blank_variants(count: int = 2) -> list[dict[str, str]]:
    """Empty rows to fill in: German and English first."""
    languages = ["de", "en"][:count] if count <= 2 else ["de", "en"] + ["de"] * (count - 2)
    return [{"language": lang, "label": "A", "title": "", "body": "", "cta_label": ""} for lang in languages]


def variants_of(saved: Sequence[VariantPublic]) -> list[dict[str, str]]:
    return [{name: str(getattr(v, name)) for name in VARIANT_FIELDS} for v in saved]


def _filled(row: dict[str, str]) -> bool:
    return any(row.get(name) for name in TEXT_FIELDS)


def form_of(visit: Visit) -> dict[str, Any]:
    """What the form sent: scalars as typed, the chosen sites, and the texts, filled rows first."""
    form: dict[str, Any] = {name: visit.field(name) for name in SCALARS}
    form["organisation_id"] = visit.field("organisation_id")
    form["site_ids"] = [s for s in visit.fields("site_ids") if s.isdigit()][:500]
    rows: dict[int, dict[str, str]] = {}
    for key, value in visit.form.multi_items():
        found = _ROW.match(key)
        if found and isinstance(value, str) and int(found.group(1)) < MAX_ROWS:
            rows.setdefault(int(found.group(1)), {})[found.group(2)] = value.strip()
    ordered = [rows[i] for i in sorted(rows)]
    filled = [r for r in ordered if _filled(r)]
    form["variants"] = filled + [r for r in ordered if not _filled(r)][:1] or blank_variants(1)
    return form


def _moment(text: str) -> datetime | str | None:
    """A datetime-local value, read on the wall clock of the display zone; what is not one stays text."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone(None))
    except ValueError:
        return text


def request_values(form: dict[str, Any]) -> dict[str, Any]:
    """The request body the admin API would get for this form."""
    values: dict[str, Any] = {}
    for name in SCALARS:
        text = form.get(name, "")
        if name in MOMENTS:
            values[name] = _moment(text)
        else:  # empty: not set, but a name and a kind are required (the schema then says so)
            values[name] = text if text != "" or name in REQUIRED else None
    if values.get("priority") is None:
        values["priority"] = 0
    values["site_ids"] = [int(s) for s in form["site_ids"]]
    values["variants"] = [
        {name: row.get(name, "") for name in VARIANT_FIELDS} for row in form["variants"] if _filled(row)
    ]
    return values
