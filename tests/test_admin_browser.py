"""The admin pages in a real browser (Debian's chromium) on a phone-sized screen, against a real server: a
charity's owner goes from nothing to a live campaign by keyboard alone, in German and in English: signs in,
adds a site, adds a gateway and enrols it with the real `beacon-agent enroll` and the code the page shows,
writes a campaign with a German and an English text (the preview follows the typing), starts it, and a
passer-by's walk past the gateway shows up as a prompt on the campaign's page. Every page on the way, and
every other page, has no WCAG 2.1 AA violation by axe-core and no horizontal scroll at 375 px.

With NAHBAR_SCREENSHOTS=DIR (`make screenshots` sets docs/screenshots) the main pages are saved there."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from mobile_api.eid import eid
from server.app import create_app
from server.core.config import Settings
from server.tenancy.models import AdminUser, Membership, Organisation, PlatformSettings
from tests.admin_world import PASSWORD, make_world, password_hash
from tests.conftest import Clock, LiveServer
from tests.test_landing_browser import assert_accessible
from tests.test_web_tenancy_matrix import MATRIX, _fill

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
BEACON_AGENT = Path(sys.executable).with_name("beacon-agent")
WORDS = {
    "de": {
        "email": "E-Mail-Adresse",
        "running": "läuft",
        "working": "funktioniert",
        "asked": "gefragt",
        "title": "Lust zu helfen?",
        "other_title": "Want to help?",
    },
    "en": {
        "email": "E-mail address",
        "running": "running",
        "working": "working",
        "asked": "asked",
        "title": "Want to help?",
        "other_title": "Lust zu helfen?",
    },
}


@pytest.fixture
def served(settings: Settings, clock: Clock) -> Iterator[LiveServer]:
    """A real server whose public address (in enrolment commands and invite links) is its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    own = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with LiveServer(create_app(own, clock=clock), port) as server:
        yield server


def screenshot(page, name: str, language: str, tmp_path: Path, at: str | None = None) -> None:
    """The screen as the person sees it (scrolled to `at`), into $NAHBAR_SCREENSHOTS or the test's folder."""
    folder = Path(os.environ["NAHBAR_SCREENSHOTS"]) if os.environ.get("NAHBAR_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    if at is not None:
        page.locator(at).first.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(folder / f"{language}-{name}.png"))


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def checked(page) -> None:
    """What every page must be: no AA violation, no horizontal scroll at 375 px."""
    assert fits_the_screen(page), f"{page.url} scrolls sideways at 375 px"
    assert_accessible(page)


def tab_to(page, selector: str, limit: int = 120) -> None:
    """Press Tab until `selector` has the focus, which must be visible: the keyboard reaches it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"no visible focus on {selector}"
            return
    raise AssertionError(f"{selector} cannot be reached with Tab on {page.url}")


def type_into(page, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def submit(page, selector: str = 'main button[type="submit"]:not([name])') -> None:
    tab_to(page, selector)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def owner_of_a_new_charity(session: Session, language: str) -> tuple[str, int]:
    """What the operator sets up first: the charity with its privacy contact, and its owner's account."""
    session.add(PlatformSettings())
    org = Organisation(slug=f"hospiz-{language}", name="Hospiz am Park", privacy_contact="dpo@hospiz.example")
    session.add(org)
    session.flush()
    user = AdminUser(email=f"owner-{language}@hospiz.example", password_hash=password_hash())
    session.add(user)
    session.flush()
    session.add(Membership(user_id=user.id, organisation_id=org.id, role="owner"))
    session.commit()
    return user.email, org.id


def walk_past(base_url: str, token: str, clock: Clock, language: str) -> None:
    """A phone that opted in stops at the door for 20 s; the gateway reports it as its agent does."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        body = {"consent_text_version": "2026-11", "scopes": ["volunteer"], "language": language}
        phone = http.post("/mobile/v1/optin", json=body).raise_for_status().json()
        key, k = bytes.fromhex(phone["identity_key"]), phone["rotation_exponent"]
        gateway = {"Authorization": f"Bearer {token}"}
        now = clock()
        events = []
        for number, (kind, at, dwell) in enumerate(
            [("enter", now - timedelta(seconds=20), 0.0), ("dwell", now, 20.0)]
        ):
            events.append(
                {
                    "id": f"walk-{number:04d}",
                    "kind": kind,
                    "eid": eid(key, int(at.timestamp()), k).hex(),
                    "observed_at": at.isoformat(),
                    "rssi": -60.0,
                    "dwell_s": dwell,
                }
            )
        answer = http.post("/gateway/v1/events", json={"events": events}, headers=gateway)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prompts"] == 1, answer.text


def heartbeat(base_url: str, token: str) -> None:
    beat = {
        "version": "0.1.0",
        "uptime_s": 120,
        "scanner_mode": "passive",
        "scanner_state": "scanning",
        "adverts_seen_per_s": 42.5,
        "adverts_kept_per_s": 1.5,
        "adverts_dropped_per_s": 41.0,
        "outbox_depth": 0,
        "outbox_dropped_full": 0,
        "outbox_set_aside": 0,
        "scanner_restarts": 0,
        "scanner_power_cycles": 0,
    }
    answer = httpx.post(
        f"{base_url}/gateway/v1/heartbeat", json=beat, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code in {200, 204}, answer.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the matrix covers PostgreSQL
@pytest.mark.parametrize("language", ["de", "en"])
def test_from_nothing_to_a_live_campaign_by_keyboard(
    chromium,
    served,
    session: Session,
    clock: Clock,
    tmp_path: Path,
    language: str,  # noqa: F811
):
    words = WORDS[language]
    email, org_id = owner_of_a_new_charity(session, language)
    context = chromium.new_context(viewport=PHONE, locale={"de": "de-DE", "en": "en-GB"}[language])
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        # Sign in.
        page.goto(f"{served.url}/admin")
        assert page.url.startswith(f"{served.url}/admin/login")
        assert page.get_attribute("html", "lang") == language
        checked(page)
        screenshot(page, "1-login", language, tmp_path)
        type_into(page, "#email", email)
        type_into(page, "#password", PASSWORD)
        submit(page)
        assert page.url == f"{served.url}/admin"
        checked(page)
        screenshot(page, "2-overview", language, tmp_path)

        # A site: its name; the time zone, language and quiet hours keep their defaults.
        page.goto(f"{served.url}/admin/sites/new?organisation_id={org_id}")
        checked(page)
        type_into(page, "#name", "Hospiz am Park, Parkstraße")
        type_into(page, "#address", "Parkstraße 1, 10115 Berlin")
        submit(page)
        site_id = int(re.search(r"/admin/sites/(\d+)", page.url).group(1))
        checked(page)
        screenshot(page, "3-site", language, tmp_path, at="#sign-heading")

        # A gateway, enrolled by the real agent with what the page shows.
        page.goto(f"{served.url}/admin/gateways/new?site_id={site_id}")
        checked(page)
        type_into(page, "#name", "Fenster vorne" if language == "de" else "front window")
        submit(page)
        checked(page)
        screenshot(page, "4-gateway-enrol", language, tmp_path)
        command = page.locator("#enrol").inner_text().strip()
        assert command.startswith("sudo -u beacon-agent beacon-agent enroll --server ")
        agent_args = command.removeprefix("sudo -u beacon-agent beacon-agent ").split()
        config = tmp_path / "agent.toml"
        config.write_text('adapter = "hci0"\n')
        env = os.environ | {
            "BEACON_AGENT_STATE_DIR": str(tmp_path / "state"),
            "BEACON_AGENT_CONFIG": str(config),
        }
        enrolled = subprocess.run(
            [str(BEACON_AGENT), *agent_args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        assert "enrolled as gateway" in enrolled.stdout
        token = (tmp_path / "state" / "token").read_text().strip()
        heartbeat(served.url, token)
        gateway_url = page.locator("main a[href^='/admin/gateways/']").last.get_attribute("href")
        page.goto(f"{served.url}{gateway_url}")
        assert words["working"] in page.locator("main").inner_text()
        checked(page)

        # A campaign with a German and an English text; the preview follows the typing.
        page.goto(f"{served.url}/admin/campaigns/new?organisation_id={org_id}")
        checked(page)
        type_into(page, "#name", "Ehrenamt im Hospiz")
        type_into(page, "#cta_url", "https://hospiz.example/ehrenamt")
        tab_to(page, f"#site_ids-{site_id}")
        page.keyboard.press("Space")
        texts = {
            "de": ("Lust zu helfen?", "Das Hospiz hier sucht Menschen, die vorlesen.", "Mehr erfahren"),
            "en": ("Want to help?", "The hospice here is looking for people to read aloud.", "Learn more"),
        }
        for row, lang in enumerate(("de", "en")):
            assert page.locator(f"#variants-{row}-language").input_value() == lang
            for field, text in zip(("title", "body", "cta_label"), texts[lang], strict=True):
                type_into(page, f"#variants-{row}-{field}", text)
        preview = page.locator('[data-preview="variants-0-title"]').first
        assert preview.inner_text() == texts["de"][0]
        checked(page)
        screenshot(page, "5-campaign-form", language, tmp_path, at=".variant .phone")
        submit(page)
        campaign_url = page.url.split("?")[0]
        assert re.fullmatch(rf"{served.url}/admin/campaigns/\d+", campaign_url)
        assert page.locator(".checklist .no").count() == 0, page.locator(".checklist").inner_text()
        assert page.get_by_text(words["title"]).first.is_visible()
        assert page.get_by_text(words["other_title"]).first.is_visible()
        checked(page)

        # Start it.
        tab_to(page, 'main form[action$="/activate"] button')
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert words["running"] in page.locator(".meta").inner_text()
        checked(page)

        # Someone walks past the window; the campaign's page shows the prompt.
        walk_past(served.url, token, clock, language)
        page.goto(campaign_url)
        decisions = page.locator("#prompts-heading + p + .table").inner_text()
        assert words["asked"] in decisions
        assert re.search(r"p_[0-9a-z]+", decisions)  # a pseudonym, nothing that identifies the person
        checked(page)
        screenshot(page, "6-campaign-live", language, tmp_path, at="#prompts-heading")
        assert all(url.startswith(served.url) for url in requests), "a page asked another host"
    finally:
        context.close()


def gettable_pages(world) -> list[tuple[str, str]]:
    """Every page a GET shows, with who may see it, filled with charity A's ids."""
    ids = world.ids["a"] | {"invite_token": world.invite_token, "lang": "en"}
    pages = []
    for (method, template), case in MATRIX.items():
        if method != "GET" or template.startswith("/admin/language") or template.endswith(".svg"):
            continue
        who = "operator" if case.kind == "operator" else "owner_a"
        pages.append((_fill(template + case.query, ids), who))
    return pages


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["de", "en"])
def test_every_page_is_accessible_and_fits_a_phone(
    chromium,
    served,
    session: Session,
    clock: Clock,
    tmp_path: Path,
    language: str,  # noqa: F811
):
    world = make_world(session, clock())
    contexts: dict[str, Any] = {}
    try:
        for who in ("owner_a", "operator"):
            context = chromium.new_context(viewport=PHONE, locale={"de": "de-DE", "en": "en-GB"}[language])
            cookie, csrf = world.headers[who]["Cookie"].split("=", 1)[1], world.headers[who]["X-CSRF-Token"]
            context.add_cookies(
                [
                    {"name": "nahbar_session", "value": cookie, "url": served.url + "/admin"},
                    {"name": "nahbar_csrf", "value": csrf, "url": served.url + "/admin"},
                ]
            )
            contexts[who] = context.new_page()
        visited = 0
        for url, who in gettable_pages(world):
            page = contexts[who]
            answer = page.goto(f"{served.url}{url}")
            assert answer.status < 400, (url, answer.status)
            assert page.get_attribute("html", "lang") == language
            checked(page)
            visited += 1
            if url.startswith("/admin/platform/fleet"):
                screenshot(page, "7-fleet", language, tmp_path)
        # The error states: a form with its errors, a refusal.
        page = contexts["owner_a"]
        site = world.ids["a"]["site_id"]
        page.goto(f"{served.url}/admin/sites/{site}")
        page.fill("#quiet_start", "")
        page.fill("#name", "")
        with page.expect_navigation():
            page.locator(f'main form[action$="/admin/sites/{site}"] button[type="submit"]').click()
        assert page.locator(".summary").is_visible()
        checked(page)
        page.goto(f"{served.url}/admin/sites/{world.ids['b']['site_id']}")
        checked(page)
        assert visited >= 20
    finally:
        for page in contexts.values():
            page.context.close()
