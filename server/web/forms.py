"""Forms to the domain's schemas and back: what a person typed becomes the API's own request schema (so the
same validation holds), and every refusal becomes a message next to its field, in the page's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from server.core.errors import NahbarError
from server.web.i18n import N_, gettext

M = TypeVar("M", bound=BaseModel)

# By pydantic's error type; the values are msgids, filled with the error's own limits.
_BY_TYPE: Final = {
    "missing": N_("Fill this in."),
    "string_too_short": N_("Fill this in."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "too_long": N_("At most %(max_length)s entries."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "greater_than_equal": N_("At least %(ge)s."),
    "greater_than": N_("More than %(gt)s."),
    "less_than_equal": N_("At most %(le)s."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "bool_parsing": N_("Choose yes or no."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_iso8601": N_("Enter a date and time."),
    "datetime_out_of_range": N_("Enter a date between the years 1970 and 2999."),
}
# Where a field's own rule says more than its error type.
_BY_FIELD: Final = {
    "quiet_start": N_("Enter a time as HH:MM, such as 21:00."),
    "quiet_end": N_("Enter a time as HH:MM, such as 08:00."),
    "daily_from": N_("Enter a time as HH:MM, such as 09:00."),
    "daily_until": N_("Enter a time as HH:MM, such as 18:00."),
    "timezone": N_("Unknown time zone: choose one from the list, such as Europe/Berlin."),
    "slug": N_("Lower-case letters, digits and hyphens, 2 to 64 of them, such as hospiz-am-park."),
    "email": N_("Enter an e-mail address, such as name@example.org."),
    "privacy_contact": N_("Enter an e-mail address or an https:// address."),
    "ibeacon_uuid": N_("Enter a UUID such as f7826da6-4fa2-4e98-8024-bc5b71e0893e, or nothing."),
}
STALE: Final = N_(
    "Someone else changed this while you were editing. What they saved is shown next to each field they "
    "changed; your values are still in the form. Save again to replace theirs with yours."
)
_BLANK: Final = N_("Fill this in; spaces alone are not enough.")
_INVALID: Final = N_("This is not valid.")


def field_name(loc: tuple[int | str, ...]) -> str:
    """`variants[0].title` as the form names it: `variants-0-title`; a top-level field by its name."""
    parts = [str(p) for p in loc if p != "body"]
    return "-".join(parts) if parts else "form"


def _message(lang: str, error: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    name = str(loc[-1]) if loc else ""
    kind = str(error.get("type", ""))
    context = dict(error.get("ctx") or {})
    if kind == "value_error" and "blank" in str(error.get("msg", "")):
        return gettext(lang, _BLANK)
    if kind in {"string_pattern_mismatch", "value_error"} and name in _BY_FIELD:
        return gettext(lang, _BY_FIELD[name])
    if kind in {"string_pattern_mismatch", "value_error"} and name == "label":
        return gettext(lang, N_("A capital letter, then up to 15 capitals or digits, such as A or B."))
    template = _BY_TYPE.get(kind)
    if template is None:
        return gettext(lang, _INVALID)
    return gettext(lang, template, **{k: v for k, v in context.items() if isinstance(v, int | float | str)})


def errors_of(lang: str, error: ValidationError) -> dict[str, str]:
    """Each field's first problem, named as the form names the field."""
    found: dict[str, str] = {}
    for item in error.errors():
        found.setdefault(field_name(tuple(item["loc"])), _message(lang, item))
    return found


def parse(model: type[M], values: Mapping[str, Any], lang: str) -> M | dict[str, str]:
    """The schema from the form's values, or the messages for the fields at fault."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        return errors_of(lang, error)


def blank_to_none(values: Mapping[str, str], required: tuple[str, ...] = ()) -> dict[str, str | None]:
    """An optional field left empty means "not set", not an empty string; a required one stays empty, so
    that the schema says it must be filled in."""
    return {k: (v if v != "" or k in required else None) for k, v in values.items()}


def refusal_errors(lang: str, error: NahbarError, messages: Mapping[str, str]) -> dict[str, str]:
    """A service's refusal next to its field: `messages` translates the fields it may name (by msgid);
    a field without one gets the service's own words."""
    found: dict[str, str] = {}
    problems = error.extra.get("errors")
    listed = problems if isinstance(problems, list) else [error.extra]
    for problem in listed:
        if not isinstance(problem, dict):
            continue
        name = str(problem.get("field") or "form")
        key = name.replace("[", "-").replace("].", "-").replace(".", "-").rstrip("]")
        text = messages.get(name)
        found.setdefault(key, gettext(lang, text) if text else str(problem.get("message") or error.detail))
    return found or {"form": error.detail}
