"""Jinja2 for the admin pages: one environment per language (its gettext catalogue installed), the templates
and static files of this package, and the formatting filters (dates, numbers) of the page's language."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.staticfiles import StaticFiles

from server.api.headers import html_headers
from server.web import i18n, labels

HERE: Final = Path(__file__).parent
STATIC_PATH: Final = "/admin/static"
PAGE_HEADERS: Final = html_headers() | {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def static(name: str) -> str:
    return f"{STATIC_PATH}/{name}"


@lru_cache(maxsize=len(i18n._LOCALES))
def environment(language: str) -> Environment:
    """The templates in `language`: `_()` and `{% trans %}` read its catalogue."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "svg"]),  # every .html and .svg template escapes its input
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,  # a misspelt name fails the page's test instead of rendering empty
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals |= {"static": static, "lang": language}

    def when(moment: datetime | None, zone_name: str | None = None) -> str:
        return i18n.format_datetime(moment, language, zone_name)

    def number(value: float | int | None, digits: int = 1) -> str:
        return i18n.format_decimal(value, language, digits)

    def named(table: str, code: str | None) -> str:
        return labels.label(language, getattr(labels, table), code)

    env.filters |= {"when": when, "number": number}
    env.globals["label"] = named
    return env


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    language: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page of `name` in `language`, with the headers every admin page has."""
    page = environment(language).get_template(name).render({"request": request, **context})
    answer = HTMLResponse(page, status_code=status, headers=dict(PAGE_HEADERS) | dict(headers or {}))
    answer.headers["Content-Language"] = language
    return answer


def render_text(name: str, context: Mapping[str, Any], language: str) -> str:
    """A template that is not a page (the window sign's SVG), in `language`."""
    return environment(language).get_template(name).render(dict(context))


def static_files() -> StaticFiles:
    """The pages' stylesheet and scripts, served by this server (no other host is ever asked)."""
    return StaticFiles(directory=HERE / "static")
