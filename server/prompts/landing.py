"""/p/{token}: the page a prompt opens. The unguessable token is the capability; no login, no JavaScript.

Forms POST back to the same URL. Against cross-site request forgery the token suffices (a forger must know
it), and a cross-site POST is refused on the browser's own word (Sec-Fetch-Site, else Origin). The page
sends no Referer onward, so the token never leaks to the charity's site or anyone else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from server.api.deps import RuntimeDep, SessionDep
from server.campaigns.models import Campaign, CampaignVariant
from server.core.const import LANGUAGES, Outcome, ResponseKind
from server.core.security import hash_token
from server.impact import confirmations
from server.prompts import repository
from server.prompts.landing_html import Prompt, message_page, prompt_page
from server.prompts.models import PromptDecision
from server.runtime import Runtime
from server.subscribers.responses import respond

router = APIRouter(prefix="/p", include_in_schema=False)

_CHOICES = {ResponseKind.DISMISSED, ResponseKind.NOT_HERE, ResponseKind.NOT_THIS_ORG}


def _html(body_of: str, nonce: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body_of,
        status_code=status,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Robots-Tag": "noindex",
        },
    )


def _language(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "de"


@dataclass(frozen=True, slots=True)
class _Found:
    decision: PromptDecision
    variant: CampaignVariant
    campaign: Campaign
    organisation: str
    language: str

    @property
    def test(self) -> bool:
        return self.decision.outcome == Outcome.TEST


def _find(session: Session, runtime: Runtime, request: Request, token: str, nonce: str) -> _Found | Response:
    row = repository.by_landing_token_hash(session, hash_token(token)) if len(token) <= 100 else None
    if row is None:
        return _html(message_page(_language(request), "missing", nonce), nonce, 404)
    decision, variant, campaign, org, subscriber = row
    # The page speaks the prompt's language: buttons and headings around it must not be in another one.
    # The variant is the person's language where the campaign has it (policy.decide.pick_variant).
    language = next(
        (lang for lang in (variant.language, subscriber.language) if lang in LANGUAGES), LANGUAGES[0]
    )
    if runtime.clock() >= decision.decided_at + timedelta(seconds=runtime.settings.landing_ttl_seconds):
        return _html(message_page(language, "expired", nonce), nonce, 410)
    return _Found(decision, variant, campaign, org.name, language)


def _record(session: Session, runtime: Runtime, found: _Found, kind: ResponseKind) -> None:
    if not found.test and found.decision.subscriber_id is not None:
        respond(session, found.decision.subscriber_id, found.decision.id, kind, runtime.clock())


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


@router.get("/{token}", response_class=HTMLResponse)
def landing_page(token: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The charity's request; opening it is recorded as `opened`."""
    nonce = secrets.token_urlsafe(16)
    found = _find(session, runtime, request, token, nonce)
    if isinstance(found, Response):
        return found
    _record(session, runtime, found, ResponseKind.OPENED)
    variant = found.variant
    prompt = Prompt(
        found.language, found.organisation, variant.title, variant.body, variant.cta_label, token, found.test
    )
    return _html(prompt_page(prompt, nonce), nonce)


@router.get("/{token}/go")
def go(token: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The call to action: recorded as `accepted`, then on to the charity's page."""
    nonce = secrets.token_urlsafe(16)
    found = _find(session, runtime, request, token, nonce)
    if isinstance(found, Response):
        return found
    _record(session, runtime, found, ResponseKind.ACCEPTED)
    target = found.campaign.cta_url or "/"
    if found.campaign.cta_url:  # the prompt's opaque reference, where the charity confirms sign-ups
        secret = runtime.settings.secret_key.get_secret_value()
        organisation_id = found.campaign.organisation_id
        target = confirmations.link(session, secret, found.decision, organisation_id, target, runtime.clock())
    return RedirectResponse(target, status_code=303, headers={"Referrer-Policy": "no-referrer"})


@router.post("/{token}", response_class=HTMLResponse)
def choose(
    token: str,
    kind: Annotated[str, Form(max_length=20)],
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """ "Not now", "not here again" or "not from this charity"."""
    nonce = secrets.token_urlsafe(16)
    found = _find(session, runtime, request, token, nonce)
    if isinstance(found, Response):
        return found
    if _cross_site(request) or kind not in _CHOICES:
        return _html(message_page(found.language, "refused", nonce), nonce, 403 if kind in _CHOICES else 422)
    _record(session, runtime, found, ResponseKind(kind))
    said = "thanks.test" if found.test else f"thanks.{kind}"  # a test send records nothing
    return _html(message_page(found.language, said, nonce, found.organisation), nonce)
