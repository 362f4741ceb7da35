"""The pages' languages: gettext catalogues (English msgids, German in locale/de), compiled in memory when
this module is first imported, and dates, times and numbers formatted by Babel for a locale and a zone.

No .mo file exists: `server/web/locale/de/LC_MESSAGES/messages.po` is read and compiled here, so the
catalogue in the repository is the one the server uses. `make messages` extracts the msgids from the code
and the templates and merges them into it; tests/test_web_catalogue.py fails when a msgid has no German.
"""

from __future__ import annotations

import gettext as gettext_module
from datetime import datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal as babel_decimal

from server.core.const import LANGUAGES

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
SOURCE_LANGUAGE: Final = "en"  # the msgids
DEFAULT_LANGUAGE: Final = "de"
LANGUAGE_COOKIE: Final = "nahbar_lang"
# Times that belong to no site (audit entries, tokens) are shown in this zone, and the page says so.
DISPLAY_ZONE: Final = "Europe/Berlin"
_LOCALES: Final = {"de": "de_DE", "en": "en_GB"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Marks a msgid for extraction; it is translated where it is shown."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext_module.NullTranslations:
    """The language's catalogue, compiled in memory from its .po (English: the msgids themselves)."""
    if language == SOURCE_LANGUAGE:
        return gettext_module.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy guess is no translation: English instead
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def gettext(language: str, message: str, **values: object) -> str:
    """`message` in `language`, with %(name)s placeholders filled in."""
    text = translations(language).gettext(message)
    return text % values if values else text


def locale_of(language: str) -> str:
    return _LOCALES.get(language, _LOCALES[DEFAULT_LANGUAGE])


def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or DISPLAY_ZONE)


def format_datetime(moment: datetime | None, language: str, zone_name: str | None = None) -> str:
    """A point in time as people of this language write it, on the wall clock of the zone (a site's)."""
    if moment is None:
        return "–"
    return babel_datetime(moment, "medium", tzinfo=zone(zone_name), locale=locale_of(language))


def format_decimal(number: float | int | None, language: str, digits: int = 1) -> str:
    if number is None:
        return "–"
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return babel_decimal(number, pattern, locale=locale_of(language))


def language_of(cookie: str | None, query: str | None, accept_language: str | None) -> str:
    """The page's language: ?lang=, else the switch's cookie, else the browser's preference, else German."""
    for chosen in (query, cookie):
        if chosen in LANGUAGES:
            return chosen
    return preferred(accept_language)


def preferred(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The first of our languages the browser prefers (by q-value, then order); German when none fits."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:50]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else default
