"""/p/{token} in a real browser (Playwright driving Debian's /usr/bin/chromium) against a real server on a
loopback port: German and English, each way to say no recorded, the call to action through /go recorded as
accepted, visible keyboard focus, and no WCAG 2.1 A/AA violations by axe-core (also on the 410 page)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from server.campaigns.models import Campaign
from server.prompts.models import PromptResponse
from server.prompts.tokens import landing_token
from tests.conftest import TEST_SECRET
from tests.delivery_world import passer_by, the_decision, walk_past

pytestmark = pytest.mark.browser

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CHARITY_PAGE = "https://hospiz.example/helfen"
BUTTONS = {
    "en": {
        "dismissed": "Not now",
        "not_here": "Don't ask me here again",
        "not_this_org": "Nothing more from",
    },
    "de": {
        "dismissed": "Jetzt nicht",
        "not_here": "Hier nicht mehr fragen",
        "not_this_org": "Nicht mehr von",
    },
}


@pytest.fixture
def page(chromium) -> Iterator[Any]:
    context = chromium.new_context()
    page = context.new_page()
    # The charity's own site is not on this machine: answer for it, so following the redirect is observable.
    page.route(
        CHARITY_PAGE,
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Hospiz</h1>"),
    )
    yield page
    context.close()


def prompt_for(client, session, clock, language: str) -> str:
    """A person speaking `language` walks past and is prompted; the campaign links to CHARITY_PAGE."""
    charity, gateway, phone = passer_by(client, session, clock(), language=language)
    campaign = session.get(Campaign, charity.campaign_id)
    campaign.cta_url = CHARITY_PAGE
    session.commit()
    walk_past(client, gateway, phone, clock())
    return landing_token(TEST_SECRET, the_decision(session).id)


def kinds(session) -> list[str]:
    session.expire_all()
    return [r.kind for r in session.scalars(select(PromptResponse).order_by(PromptResponse.id))]


def assert_accessible(page) -> None:
    """axe-core with the WCAG 2.1 A and AA rules; any violation is listed with the elements it found."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
    violations = Axe().run(page, options=options).response["violations"]
    report = "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>\n"
        + "\n".join(f"    {n['target']}: {n['failureSummary']}" for n in v["nodes"])
        for v in violations
    )
    assert violations == [], f"axe found WCAG 2.1 AA violations on {page.url}:\n{report}"


@pytest.mark.parametrize(("language", "title", "cta"), [("de", "Helfen?", "Ja"), ("en", "Help?", "Yes")])
def test_the_page_renders_in_the_persons_language_without_violations(
    client, session, clock, live_server, page, language, title, cta
):
    token = prompt_for(client, session, clock, language)
    answer = page.goto(f"{live_server.url}/p/{token}")
    assert answer.status == 200
    assert page.get_attribute("html", "lang") == language
    assert page.get_by_role("heading", level=1).inner_text() == title
    assert page.get_by_role("link", name=cta).is_visible()
    for label in BUTTONS[language].values():
        assert page.get_by_role("button", name=label).is_visible()
    assert kinds(session) == ["opened"]
    assert_accessible(page)


@pytest.mark.parametrize("kind", ["dismissed", "not_here", "not_this_org"])
@pytest.mark.parametrize("language", ["de", "en"])
def test_each_button_records_its_answer(client, session, clock, live_server, page, language, kind):
    token = prompt_for(client, session, clock, language)
    page.goto(f"{live_server.url}/p/{token}")
    with page.expect_navigation():
        page.get_by_role("button", name=BUTTONS[language][kind]).click()
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == {"de": "Danke", "en": "Thank you"}[language]
    assert kinds(session) == ["opened", kind]
    assert_accessible(page)


def test_the_call_to_action_goes_through_the_redirect_and_records_accepted(
    client, session, clock, live_server, page
):
    token = prompt_for(client, session, clock, "en")
    page.goto(f"{live_server.url}/p/{token}")
    with page.expect_request(f"{live_server.url}/p/{token}/go") as went:
        page.get_by_role("link", name="Yes").click()
    page.wait_for_url(CHARITY_PAGE)
    assert went.value.method == "GET"
    # The token stays with us: the charity's site gets no Referer.
    assert went.value.redirected_to is not None
    assert "referer" not in went.value.redirected_to.headers
    assert page.get_by_role("heading", level=1).inner_text() == "Hospiz"
    assert kinds(session) == ["opened", "accepted"]


def test_tab_reaches_the_call_to_action_and_each_button_with_a_visible_focus(
    client, session, clock, live_server, page
):
    token = prompt_for(client, session, clock, "en")
    page.goto(f"{live_server.url}/p/{token}")
    focused = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate(
                """() => {
                    const e = document.activeElement, s = getComputedStyle(e);
                    return {tag: e.tagName, text: e.innerText, visible: e.matches(':focus-visible'),
                            outline: s.outlineStyle, width: parseFloat(s.outlineWidth)};
                }"""
            )
        )
    assert [(f["tag"], f["text"]) for f in focused] == [
        ("A", "Yes"),
        ("BUTTON", "Not now"),
        ("BUTTON", "Don't ask me here again"),
        ("BUTTON", "Nothing more from hospiz e.V."),
    ]
    for f in focused:
        assert f["visible"], f
        assert f["outline"] == "solid", f
        assert f["width"] >= 2, f
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert kinds(session) == ["opened", "not_this_org"]


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_expired_page_is_410_and_accessible(client, session, clock, live_server, page, language):
    token = prompt_for(client, session, clock, language)
    clock.advance(86_400)
    answer = page.goto(f"{live_server.url}/p/{token}")
    assert answer.status == 410
    assert page.get_attribute("html", "lang") == language
    assert_accessible(page)
    assert kinds(session) == []
