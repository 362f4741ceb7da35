"""`/`: a short page in German or English (Accept-Language, or ?lang=) that says what this server is and
links to the admin pages, the API docs and the privacy notice."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from server.api.headers import html_headers

router = APIRouter(include_in_schema=False)

LANGUAGES: Final = ("de", "en")
TEXTS: Final = {
    "de": {
        "title": "Nahbar",
        "lead": "Über diesen Server fragen gemeinnützige Organisationen Menschen, die in ihrer App "
        "zugestimmt haben, an ihrer Tür, ob sie helfen oder spenden möchten.",
        "links": "Hier geht es weiter",
        "docs": "API-Dokumentation",
        "docs_hint": "für Apps, Gateways und die Verwaltung",
        "admin": "Verwaltung",
        "admin_hint": "für die Mitarbeitenden der Organisationen",
        "privacy": "Datenschutzhinweis",
        "other": "English",
    },
    "en": {
        "title": "Nahbar",
        "lead": "Through this server, charities ask people who agreed to it in their app, at their door, "
        "whether they would like to volunteer or donate.",
        "links": "Where to go from here",
        "docs": "API documentation",
        "docs_hint": "for apps, gateways and administration",
        "admin": "Administration",
        "admin_hint": "for the charities' staff",
        "privacy": "Privacy notice",
        "other": "Deutsch",
    },
}
_STYLE: Final = (
    "body{font:1.125rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;max-width:40rem;"
    "margin:1rem auto;padding:0 1.25rem}a{color:#0b5394}"
    "a:focus-visible{outline:3px solid #b35c00;outline-offset:3px}small{color:#3d3d3d}"
)
# The one inline style is allowed by its hash: no other style, and no script at all.
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP: Final = f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; form-action 'none'"


def preferred_language(accept_language: str) -> str:
    """The first of our languages by the header's weights (RFC 9110), German when it names neither."""
    best, weight = LANGUAGES[0], 0.0
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().partition("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if language in LANGUAGES and q > weight:
            best, weight = language, q
        if position > 50:  # enough of a header anyone sends
            break
    return best


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, lang: Annotated[Literal["de", "en"] | None, Query(description="de or en")] = None
) -> HTMLResponse:
    """What this server is, and where to go."""
    language = lang or preferred_language(request.headers.get("accept-language", ""))
    t = TEXTS[language]
    root = escape(str(request.scope.get("root_path", "")).rstrip("/"))
    other = "en" if language == "de" else "de"
    items = [
        f'<li><a href="{root}/admin">{t["admin"]}</a> <small>{t["admin_hint"]}</small></li>',
        f'<li><a href="{root}/docs">{t["docs"]}</a> <small>{t["docs_hint"]}</small></li>',
    ]
    items.append(f'<li><a href="{root}/mobile/v1/privacy?lang={language}">{t["privacy"]}</a></li>')
    page = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{t["title"]}</title><link rel="icon" href="data:,"><style>{_STYLE}</style></head>'
        f"<body><main><h1>{t['title']}</h1><p>{t['lead']}</p>"
        f"<h2>{t['links']}</h2><ul>{''.join(items)}</ul>"
        f'<p><a href="{root}/?lang={other}" lang="{other}" hreflang="{other}">{TEXTS[other]["other"]}</a></p>'
        "</main></body></html>"
    )
    headers = (
        html_headers(f"{CSP}; base-uri 'none'")
        | {"Cache-Control": "no-cache"}
        | {"Content-Language": language, "Vary": "Accept-Language"}
    )
    return HTMLResponse(page, headers=headers)
