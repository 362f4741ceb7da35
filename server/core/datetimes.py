"""The one datetime type for API input: an ISO 8601 string with a UTC offset, in years 1970 to 2999.

Pydantic's own `datetime` also takes numbers (and numeric strings) as Unix time, so `until=0.5` was a date,
and any year from 1 to 9999, where shifting by an offset, a time zone or a retention period overflows
Python's datetime (a 500). Every request body field and query parameter that is a point in time uses
`ApiDatetime`; answers keep plain `datetime`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

# A time of day on a site's clock, "HH:MM" (quiet hours, a campaign's daily hours).
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]

MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2999
EXAMPLE: Final = "2026-11-25T12:00:00+01:00"

# Date, a `T` (or a space, as RFC 3339 allows), hours and minutes, optional seconds and fraction, an offset.
_ISO_8601: Final = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})")


def _iso_string_only(value: Any) -> Any:
    """Refuse numbers and anything but an ISO 8601 date and time with an offset, before pydantic reads it."""
    if isinstance(value, datetime):  # made in Python (tests, services), not read from a request
        return value
    if not isinstance(value, str) or not _ISO_8601.fullmatch(value):
        raise PydanticCustomError(
            "datetime_iso8601",
            "Input should be an ISO 8601 date and time with a UTC offset, e.g. {example}",
            {"example": EXAMPLE},
        )
    return value


def _within_years(value: datetime) -> datetime:
    # The year as written: checked before any conversion, which could itself overflow near year 1 or 9999.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "Input should be a date between the years {min_year} and {max_year}",
            {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return value


ApiDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_string_only),
    AfterValidator(_within_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601 date and time with a UTC offset (Z or ±HH:MM), years {MIN_YEAR} to "
            f"{MAX_YEAR}, e.g. {EXAMPLE}",
        }
    ),
]
"""A point in time as a client sends it: timezone required, ISO 8601 strings only, years 1970 to 2999."""
