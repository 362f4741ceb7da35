"""A site's window sign (A5, SVG, German or English) and the public page its QR code opens, which says the
same, links the privacy notice and tells how to opt in."""

from __future__ import annotations

import textwrap
from typing import Final

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.api.deps import RuntimeDep, SessionDep
from server.api.headers import html_headers
from server.core.const import LANGUAGES
from server.core.errors import NotFound
from server.sites import admin_service
from server.sites.service import public_site
from server.tenancy import service as tenancy
from server.web.i18n import N_, gettext
from server.web.pages import PageRoute, VisitDep, page_language
from server.web.templating import render, render_text

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PUBLIC: Final = "/site/{site_id}"
HEADING: Final = N_("Phones that opted in are recognised here")
WHO: Final = N_(
    "%(charity)s asks people who agreed to it in their app, as they pass this door, whether they would like "
    "to volunteer or to donate."
)
ONLY: Final = N_(
    "Only phones whose owners opted in take part. No name and no phone number are known here, and anyone can "
    "stop at any time in the app."
)
MORE: Final = N_("More about it, the privacy notice and how to take part:")
# The sign's geometry in millimetres (A5 portrait) and the wrap of its lines in characters.
WIDTH_MM: Final = 148
HEIGHT_MM: Final = 210
SIGN_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def qr_path(text: str) -> tuple[str, int]:
    """The QR code's dark modules as one SVG path (one unit per module), and its size in modules."""
    code = segno.make(text, error="m")
    path = []
    for y, row in enumerate(code.matrix):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                path.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return "".join(path), len(code.matrix)


def public_url(runtime: RuntimeDep, site_id: int) -> str:
    return runtime.settings.public_url.rstrip("/") + PUBLIC.format(site_id=site_id)


@router.get("/admin/sites/{site_id}/sign.svg")
def window_sign(site_id: int, visit: VisitDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The printable A5 sign for the site's window, in ?lang= (the page's language otherwise)."""
    site = admin_service.visible_site(visit.principal, session, site_id)
    org = tenancy.visible_organisation(visit.principal, session, site.organisation_id)
    chosen = visit.query("lang")
    lang = chosen if chosen in LANGUAGES else visit.lang
    url = public_url(runtime, site.id)
    path, modules = qr_path(url)
    context = {
        "lang": lang,
        "heading": textwrap.wrap(gettext(lang, HEADING), 24),
        "who": textwrap.wrap(gettext(lang, WHO, charity=org.name), 40),
        "only": textwrap.wrap(gettext(lang, ONLY), 44),
        "more": textwrap.wrap(gettext(lang, MORE), 44),
        "url": url,
        "qr_path": path,
        "qr_modules": modules,
        "site": textwrap.wrap(site.name + (f", {site.address}" if site.address else ""), 60)[:2],
        "width": WIDTH_MM,
        "height": HEIGHT_MM,
    }
    svg = render_text("sign.svg", context, lang)
    filename = f"nahbar-sign-site-{site.id}-{lang}.svg"
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Content-Security-Policy": SIGN_CSP,
        "Cache-Control": "no-store",
    }
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get(PUBLIC, response_class=HTMLResponse)
def site_page(site_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    """For anyone: who recognises opted-in phones at this door, the privacy notice, and how to opt in."""
    found = public_site(session, site_id)
    if found is None:
        raise NotFound("No such site.")
    site, org = found
    lang = page_language(request)
    context = {
        "site": site,
        "org": org,
        "heading": gettext(lang, HEADING),
        "who": gettext(lang, WHO, charity=org.name),
        "only": gettext(lang, ONLY),
        "here": PUBLIC.format(site_id=site.id),
        "other": "en" if lang == "de" else "de",
    }
    headers = html_headers() | {"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"}
    return render(request, "site_public.html", context, lang, headers=headers)
