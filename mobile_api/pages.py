"""Public pages for the app's web view: the consent text (versioned) and the privacy notice, DE and EN."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from mobile_api.schemas import ConsentVersionPublic, ConsentVersionsPublic
from server.api.deps import RuntimeDep
from server.core.errors import NotFound
from server.subscribers.consent import CONSENT_TEXTS, CURRENT_CONSENT_VERSION
from server.subscribers.texts import Document, privacy_notice

router = APIRouter()

Lang = Annotated[Literal["de", "en"], Query(description="de or en")]
HTML_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "An HTML page"}
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'",
    "Cache-Control": "public, max-age=3600",
    "X-Content-Type-Options": "nosniff",
}
_STYLE = "body{font:1rem/1.5 system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem}"


def render(document: Document, subtitle: str | None = None) -> str:
    """A minimal, valid HTML5 page; every text is escaped."""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(document.language)}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(document.title)}</title><style>{_STYLE}</style></head>",
        f"<body><main><h1>{escape(document.title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p><small>{escape(subtitle)}</small></p>")
    parts.append(f"<p>{escape(document.lead)}</p>")
    for section in document.sections:
        parts.append(f"<h2>{escape(section.heading)}</h2>")
        parts.extend(f"<p>{escape(text)}</p>" for text in section.paragraphs)
        if section.items:
            parts.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in section.items) + "</ul>")
    for label, href in document.links:
        parts.append(f'<p><a href="{escape(href)}">{escape(label)}</a></p>')
    parts.append("</main></body></html>")
    return "\n".join(parts)


@router.get("/consent", response_model=ConsentVersionsPublic, operation_id="mobile_consent_versions")
def consent_versions() -> ConsentVersionsPublic:
    """The consent text versions this server knows; opt in with `current`."""
    return ConsentVersionsPublic(
        current=CURRENT_CONSENT_VERSION,
        versions=[
            ConsentVersionPublic(
                version=version,
                languages=sorted(texts),
                urls={lang: f"/mobile/v1/consent/{version}?lang={lang}" for lang in sorted(texts)},
            )
            for version, texts in sorted(CONSENT_TEXTS.items())
        ],
    )


@router.get(
    "/consent/{version}",
    response_class=HTMLResponse,
    responses=HTML_PAGE,
    operation_id="mobile_consent_text",
)
def consent_text(version: str, lang: Lang = "de") -> HTMLResponse:
    """The consent text of one version, as the person read it before agreeing."""
    texts = CONSENT_TEXTS.get(version)
    if texts is None:
        known = ", ".join(sorted(CONSENT_TEXTS))
        raise NotFound(f"No consent text has this version; known versions: {known}.")
    subtitle = f"Version {version}"
    return HTMLResponse(render(texts[lang], subtitle), headers=_HEADERS)


@router.get(
    "/privacy", response_class=HTMLResponse, responses=HTML_PAGE, operation_id="mobile_privacy_notice"
)
def privacy(runtime: RuntimeDep, lang: Lang = "de") -> HTMLResponse:
    """The privacy notice: what is stored and what not, for how long, and your rights."""
    make = privacy_notice.german if lang == "de" else privacy_notice.english
    document = make(runtime.settings.retention_days, runtime.settings.public_url)
    return HTMLResponse(render(document), headers=_HEADERS)
