"""/p/{token}: the prompt's landing page over HTTP: opened, accepted via the redirect, the three ways to say
no recorded as responses and exclusions, German and English, cross-site posts refused, expiry as 410."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import delete, select

from server.campaigns.models import CampaignVariant
from server.core.security import hash_token
from server.prompts.models import PromptResponse
from server.prompts.tokens import landing_token
from server.subscribers.models import Exclusion
from tests.conftest import TEST_SECRET
from tests.delivery_world import passer_by, the_decision, walk_past


def kinds(session) -> list[str]:
    session.expire_all()
    return [r.kind for r in session.scalars(select(PromptResponse).order_by(PromptResponse.id))]


@pytest.fixture
def prompted(client, session, clock):
    charity, gateway, phone = passer_by(client, session, clock(), language="en")
    walk_past(client, gateway, phone, clock())
    decision = the_decision(session)
    token = landing_token(TEST_SECRET, decision.id)
    assert decision.landing_token_hash == hash_token(token)
    return charity, token


def test_the_page_shows_the_request_and_records_opened_and_accepted(client, session, prompted):
    _charity, token = prompted
    page = client.get(f"/p/{token}")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "Help?" in page.text
    assert "Please." in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text
    assert kinds(session) == ["opened"]
    go = client.get(f"/p/{token}/go", follow_redirects=False)
    assert go.status_code == 303
    assert kinds(session) == ["opened", "accepted"]


@pytest.mark.parametrize(
    ("kind", "excluded"), [("dismissed", None), ("not_here", "site"), ("not_this_org", "org")]
)
def test_each_no_is_recorded(client, session, prompted, kind, excluded):
    charity, token = prompted
    answer = client.post(f"/p/{token}", data={"kind": kind}, headers={"Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 200
    assert "All right" in answer.text
    assert kinds(session) == [kind]
    rows = list(session.scalars(select(Exclusion)))
    if excluded is None:
        assert rows == []
    else:
        [row] = rows
        assert (row.site_id, row.organisation_id) == (
            (charity.site_id, None) if excluded == "site" else (None, charity.organisation_id)
        )


def test_a_cross_site_post_is_refused(client, session, prompted):
    _charity, token = prompted
    answer = client.post(
        f"/p/{token}", data={"kind": "not_this_org"}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert kinds(session) == []


def test_unknown_and_expired_tokens_get_friendly_pages(client, clock, prompted):
    _charity, token = prompted
    missing = client.get("/p/" + "x" * 43)
    assert missing.status_code == 404
    assert re.search(r"<h1>.+</h1>", missing.text)
    clock.advance(86_400)
    expired = client.get(f"/p/{token}")
    assert expired.status_code == 410
    assert "This request has expired" in expired.text


def test_german_for_a_german_speaker(client, session, clock):
    _charity, gateway, phone = passer_by(client, session, clock(), language="de")
    walk_past(client, gateway, phone, clock())
    token = landing_token(TEST_SECRET, the_decision(session).id)
    page = client.get(f"/p/{token}")
    assert '<html lang="de">' in page.text
    assert "Hier nicht mehr fragen" in page.text


ENGLISH = ("A request from", "Not now", "Don't ask me here again", "Nothing more from", "You get these")
GERMAN = ("Eine Bitte von", "Jetzt nicht", "Hier nicht mehr fragen", "Nicht mehr von", "Sie bekommen diese")


def prompted_with_only(client, session, clock, person: str, variant: str) -> str:
    """A person speaking `person` is prompted by a campaign whose only text is in `variant`."""
    charity, gateway, phone = passer_by(client, session, clock(), language=person)
    session.execute(
        delete(CampaignVariant).where(
            CampaignVariant.campaign_id == charity.campaign_id, CampaignVariant.language != variant
        )
    )
    session.commit()
    walk_past(client, gateway, phone, clock())
    return landing_token(TEST_SECRET, the_decision(session).id)


@pytest.mark.parametrize(
    ("person", "variant", "title", "ours", "theirs"),
    [("en", "de", "Helfen?", GERMAN, ENGLISH), ("de", "en", "Help?", ENGLISH, GERMAN)],
)
def test_the_page_speaks_the_language_of_the_prompt_it_shows(
    client, session, clock, person, variant, title, ours, theirs
):
    token = prompted_with_only(client, session, clock, person, variant)
    page = client.get(f"/p/{token}")
    text = unescape(page.text)
    assert f'<html lang="{variant}">' in page.text
    assert f"<h1>{title}</h1>" in text
    for words in ours:
        assert words in text
    for words in theirs:
        assert words not in text
    answer = client.post(f"/p/{token}", data={"kind": "not_here"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert f'<html lang="{variant}">' in answer.text
    assert {"de": "<h1>Danke</h1>", "en": "<h1>Thank you</h1>"}[variant] in answer.text


THANKS = {
    "de": {
        "dismissed": "In Ordnung. Um diese Sache bitten wir Sie in den nächsten 180 Tagen nicht noch einmal.",
        "not_here": "In Ordnung. An diesem Ort fragen wir Sie nie wieder. "
        "In der App können Sie das rückgängig machen.",
        "not_this_org": "In Ordnung. hospiz e.V. fragt Sie nie wieder, an keinem Ort. "
        "In der App können Sie das rückgängig machen.",
    },
    "en": {
        "dismissed": "All right. We will not ask you about this again for the next 180 days.",
        "not_here": "All right. We will never ask you at this place again. You can undo this in the app.",
        "not_this_org": "All right. hospiz e.V. will never ask you again, at any of its places. "
        "You can undo this in the app.",
    },
}


@pytest.mark.parametrize("kind", ["dismissed", "not_here", "not_this_org"])
@pytest.mark.parametrize("language", ["de", "en"])
def test_each_thanks_says_what_happens_next(client, session, clock, language, kind):
    """As the policy does it (DESIGN.md): "not now" is 180 days for this request, the other two are
    exclusions, forever until the person removes them."""
    token = prompted_with_only(client, session, clock, language, language)
    answer = client.post(f"/p/{token}", data={"kind": kind}, headers={"Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 200
    assert f"<p>{THANKS[language][kind]}</p>" in unescape(answer.text)
