"""Jinja2 for the admin pages: templates and static files of this package, the reader's language."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.staticfiles import StaticFiles

from server.core.const import LANGUAGES

HERE: Final = Path(__file__).parent
STATIC_PATH: Final = "/admin/static"

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(),  # every .html template escapes what it is given
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,  # a misspelt name fails the page's test instead of rendering empty
)
templates = Jinja2Templates(env=_env)
templates.env.globals["static"] = lambda name: f"{STATIC_PATH}/{name}"


def static_files() -> StaticFiles:
    """The pages' stylesheet and scripts, served by this server (no other host is ever asked)."""
    return StaticFiles(directory=HERE / "static")


def language(accept_language: str | None, default: str = "de") -> str:
    """The first of our languages the browser prefers (by q-value, then order); German when none fits."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
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
