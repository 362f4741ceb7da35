"""The prompt landing page's HTML (server-rendered, no JavaScript), in German and English, WCAG 2.1 AA.

The thanks texts say what the policy then does (server/policy/decide.py): "not now" keeps this request away
for DEFAULT_DISMISS_COOLDOWN_DAYS, "not here" and "not from this charity" are exclusions until the person
removes them in the app."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Final

from server.core.const import DEFAULT_DISMISS_COOLDOWN_DAYS

TEXTS: Final[dict[str, dict[str, str]]] = {
    "de": {
        "from": "Eine Bitte von {org}",
        "go": "{cta}",
        "go_hint": "Öffnet die Seite von {org}.",
        "other": "Nicht jetzt?",
        "dismissed": "Jetzt nicht",
        "not_here": "Hier nicht mehr fragen",
        "not_this_org": "Nicht mehr von {org}",
        "privacy": "Sie bekommen diese Anfragen, weil Sie in der App zugestimmt haben. "
        "Die Zustimmung widerrufen Sie jederzeit in der App.",
        "thanks_title": "Danke",
        "thanks.dismissed": "In Ordnung. Um diese Sache bitten wir Sie in den nächsten {days} Tagen "
        "nicht noch einmal.",
        "thanks.not_here": "In Ordnung. An diesem Ort fragen wir Sie nie wieder. "
        "In der App können Sie das rückgängig machen.",
        "thanks.not_this_org": "In Ordnung. {org} fragt Sie nie wieder, an keinem Ort. "
        "In der App können Sie das rückgängig machen.",
        "thanks.test": "Testversand: Ihre Auswahl wurde nicht gespeichert.",
        "expired_title": "Diese Anfrage ist abgelaufen",
        "expired": "Die Anfrage galt nur kurz. Danke, dass Sie nachsehen! "
        "In der App finden Sie Ihre Anfragen.",
        "missing_title": "Diese Seite gibt es nicht",
        "missing": "Der Link ist unvollständig oder ungültig. In der App finden Sie Ihre Anfragen.",
        "refused_title": "Das hat nicht geklappt",
        "refused": "Bitte nutzen Sie die Knöpfe auf der Seite der Anfrage.",
        "test": "Testversand: Ihre Auswahl wird nicht gespeichert.",
    },
    "en": {
        "from": "A request from {org}",
        "go": "{cta}",
        "go_hint": "Opens the website of {org}.",
        "other": "Not now?",
        "dismissed": "Not now",
        "not_here": "Don't ask me here again",
        "not_this_org": "Nothing more from {org}",
        "privacy": "You get these requests because you agreed to them in the app. "
        "You can withdraw your consent in the app at any time.",
        "thanks_title": "Thank you",
        "thanks.dismissed": "All right. We will not ask you about this again for the next {days} days.",
        "thanks.not_here": "All right. We will never ask you at this place again. "
        "You can undo this in the app.",
        "thanks.not_this_org": "All right. {org} will never ask you again, at any of its places. "
        "You can undo this in the app.",
        "thanks.test": "Test send: your choice was not recorded.",
        "expired_title": "This request has expired",
        "expired": "It was only valid for a short time. Thank you for looking! The app lists your requests.",
        "missing_title": "This page does not exist",
        "missing": "The link is incomplete or invalid. The app lists your requests.",
        "refused_title": "That did not work",
        "refused": "Please use the buttons on the request's page.",
        "test": "Test send: your choice is not recorded.",
    },
}

# Colours chosen for contrast >= 7:1 on white (text) and >= 4.5:1 for white on the button colours.
_STYLE = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:1.125rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;
color:#1a1a1a;background:#fff}
header,main,footer{max-width:36rem;margin:0 auto;padding:1rem 1.25rem}
header p{margin:0;color:#3d3d3d;font-size:1rem}
h1{font-size:1.6rem;line-height:1.25;margin:.25rem 0 .75rem}
h2{font-size:1.1rem;margin:1.75rem 0 .5rem}
.cta{display:block;text-align:center;background:#0b5394;color:#fff;font-weight:700;text-decoration:none;
padding:.9rem 1rem;border-radius:.5rem;margin:1.25rem 0 .25rem;min-height:44px}
.hint{font-size:.95rem;color:#3d3d3d;margin:0}
form{margin:.5rem 0}
button{display:block;width:100%;font:inherit;text-align:left;background:#fff;color:#1a1a1a;
border:2px solid #595959;border-radius:.5rem;padding:.7rem 1rem;min-height:44px;cursor:pointer}
a:focus-visible,button:focus-visible{outline:3px solid #b35c00;outline-offset:3px}
.note{background:#fff4d6;border:2px solid #8a5a00;padding:.5rem .75rem;border-radius:.5rem}
footer p{font-size:.95rem;color:#3d3d3d}
"""


@dataclass(frozen=True, slots=True)
class Prompt:
    language: str
    organisation: str
    title: str
    body: str
    cta_label: str
    token: str
    test: bool


def texts(language: str) -> dict[str, str]:
    return TEXTS.get(language, TEXTS["de"])


def _page(language: str, title: str, main: str, nonce: str, header: str = "") -> str:
    t = texts(language)
    head = f"<header><p>{header}</p></header>" if header else ""
    return (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f'<title>{escape(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
        f'<body>{head}<main id="main">{main}</main>'
        f"<footer><p>{escape(t['privacy'])}</p></footer></body></html>"
    )


def prompt_page(prompt: Prompt, nonce: str) -> str:
    """The charity's request, its call to action and the three ways to say no."""
    t = texts(prompt.language)
    base = f"/p/{escape(prompt.token)}"
    note = f'<p class="note" role="status">{escape(t["test"])}</p>' if prompt.test else ""
    buttons = "".join(
        f'<form method="post" action="{base}"><input type="hidden" name="kind" value="{kind}">'
        f'<button type="submit">{escape(t[kind].format(org=prompt.organisation))}</button></form>'
        for kind in ("dismissed", "not_here", "not_this_org")
    )
    main = (
        f"{note}<h1>{escape(prompt.title)}</h1><p>{escape(prompt.body)}</p>"
        f'<a class="cta" href="{base}/go" aria-describedby="go-hint">{escape(prompt.cta_label)}</a>'
        f'<p class="hint" id="go-hint">{escape(t["go_hint"].format(org=prompt.organisation))}</p>'
        f'<section aria-labelledby="other"><h2 id="other">{escape(t["other"])}</h2>{buttons}</section>'
    )
    return _page(
        prompt.language, prompt.title, main, nonce, header=escape(t["from"].format(org=prompt.organisation))
    )


def message_page(language: str, key: str, nonce: str, organisation: str = "") -> str:
    """A short page with a heading and one sentence: thanks, expired, missing, refused."""
    t = texts(language)
    title_key = "thanks_title" if key.startswith("thanks.") else f"{key}_title"
    title = t[title_key]
    text = t[key].format(org=organisation, days=DEFAULT_DISMISS_COOLDOWN_DAYS)
    main = f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
    return _page(language, title, main, nonce)
