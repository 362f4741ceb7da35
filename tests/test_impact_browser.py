"""The impact pages in a real browser (Debian's chromium) on a phone-sized screen, against a real server, in
German and English: on a seeded history the results page draws its charts (and holds their tables), and it,
the variants, open-data and webhooks pages have no WCAG 2.1 AA violation by axe-core and no horizontal
scroll at 375 px. With NAHBAR_SCREENSHOTS=DIR the results page is saved there."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.app import create_app
from server.core.config import Settings
from tests.admin_world import add_user, signed_in
from tests.conftest import Clock, LiveServer
from tests.impact_world import open_street, seed_history
from tests.test_admin_browser import PHONE, checked, screenshot, served  # noqa: F401

pytestmark = pytest.mark.browser

DAY = "2026-11-25"
WORDS = {
    "de": {
        "seen": "Vorbeigehende gesehen",
        "short": "Zu kurz geblieben",
        "verdict": "Noch nicht genug Daten",
    },
    "en": {"seen": "Passers-by seen", "short": "Did not stay long enough", "verdict": "Not enough data yet"},
}


def seeded(settings: Settings, session: Session, clock: Clock) -> tuple[int, dict[str, str]]:
    """Five passers-by at a charity's door (tests/impact_world.py), folded, and its owner's session."""
    quiet = settings.model_copy(update={"scheduler_enabled": False})
    with TestClient(create_app(quiet, clock=clock)) as client:
        street = open_street(client, session, clock)
        seed_history(street)
        street.fold()
    org_id = street.charity.organisation_id
    owner = add_user(session, "owner@hospiz.example", roles={org_id: "owner"})
    headers = signed_in(session, owner, clock.now)
    session.commit()
    return org_id, headers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page tests cover PostgreSQL
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_results_draw_their_charts_and_every_impact_page_is_accessible(
    chromium,
    served: LiveServer,  # noqa: F811
    settings: Settings,
    session: Session,
    clock: Clock,
    tmp_path: Path,
    language: str,
):
    words = WORDS[language]
    org_id, headers = seeded(settings, session, clock)
    context = chromium.new_context(viewport=PHONE, locale={"de": "de-DE", "en": "en-GB"}[language])
    cookie = headers["Cookie"].split("=", 1)[1]
    context.add_cookies(
        [
            {"name": "nahbar_session", "value": cookie, "url": served.url + "/admin"},
            {"name": "nahbar_csrf", "value": headers["X-CSRF-Token"], "url": served.url + "/admin"},
        ]
    )
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(f"{served.url}/admin/organisations/{org_id}/impact?since={DAY}&until={DAY}")
        assert page.get_attribute("html", "lang") == language
        for chart in ("#funnel-chart", "#answers-chart", "#reasons-chart"):
            box = page.locator(chart).bounding_box()
            assert box is not None, chart
            assert box["width"] > 300, chart  # drawn, as wide as the phone allows
            assert page.locator(f"{chart} rect").count() > 0, chart
        funnel = page.get_by_role("table").filter(has=page.get_by_role("rowheader", name=words["seen"]))
        assert (
            funnel.get_by_role("row").filter(has_text=words["seen"]).locator("td").first.inner_text() == "5"
        )
        assert page.get_by_role("rowheader", name=words["short"]).is_visible()
        assert page.get_by_role("img", name=page.locator("#funnel-chart-title").text_content()).count() == 1
        checked(page)
        screenshot(page, "8-results", language, tmp_path, at="#funnel-heading")
        page.goto(f"{served.url}/admin/organisations/{org_id}/impact/variants?since={DAY}&until={DAY}")
        checked(page)
        for tail in ("open-data", "webhooks"):
            page.goto(f"{served.url}/admin/organisations/{org_id}/{tail}")
            checked(page)
        page.goto(f"{served.url}/admin/organisations/{org_id}/impact?since=nonsense")
        assert page.locator(".summary").is_visible()
        checked(page)
        assert all(url.startswith(served.url) for url in requests), "a page asked another host"
    finally:
        context.close()
