"""/admin/invite in a real browser (Debian's chromium) on a phone-sized screen against a real server: the
link's #token lands in the field, the invite is accepted, errors are shown, and axe finds no WCAG 2.1 AA
violation; without JavaScript the pasted token works the same."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.admin_world import make_world
from tests.conftest import Clock
from tests.test_landing_browser import assert_accessible

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}
NEW_PASSWORD = "a new password of some length"


def phone_page(chromium, *, javascript: bool = True, locale: str = "de-DE") -> Any:
    context = chromium.new_context(viewport=PHONE, java_script_enabled=javascript, locale=locale)
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.requests = requests  # type: ignore[attr-defined]
    return page


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_link_fills_the_code_and_the_invite_is_accepted(
    chromium, live_server, session: Session, clock: Clock
):
    world = make_world(session, clock())
    page = phone_page(chromium, locale="en-GB")
    try:
        page.goto(f"{live_server.url}/admin/invite#{world.invite_token}")

        assert page.get_by_label("Invitation code").input_value() == world.invite_token
        assert "#" not in page.url  # the token left the address bar
        assert fits_the_screen(page)
        assert_accessible(page)
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_label("Repeat the password").fill("not the same")
        page.get_by_role("button", name="Accept invitation").click()

        assert page.get_by_text("The two passwords are not the same.").first.is_visible()
        assert fits_the_screen(page)
        assert_accessible(page)  # the error state too
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Accept invitation").click()

        assert page.get_by_role("heading", level=1).inner_text() == "Welcome"
        assert "accept@alpha.example" in page.get_by_role("status").inner_text()
        assert all(url.startswith(live_server.url) for url in page.requests)
    finally:
        page.context.close()


def test_without_javascript_a_pasted_code_works(chromium, live_server, session: Session, clock: Clock):
    world = make_world(session, clock())
    page = phone_page(chromium, javascript=False)
    try:
        page.goto(f"{live_server.url}/admin/invite#{world.invite_token}")
        assert page.get_by_label("Einladungscode").input_value() == ""
        assert fits_the_screen(page)

        page.get_by_label("Einladungscode").fill(world.invite_token)
        page.get_by_label("Neues Passwort").fill(NEW_PASSWORD)
        page.get_by_label("Passwort wiederholen").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Einladung annehmen").click()

        assert page.get_by_role("heading", level=1).inner_text() == "Willkommen"
    finally:
        page.context.close()
