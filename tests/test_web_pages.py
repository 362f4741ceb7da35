"""The admin pages over HTTP, on SQLite and PostgreSQL: signing in with the lockout, the CSRF token in forms,
errors next to their fields in the page's language, a stale edit showing what someone else saved, changed
budgets saved only after the simulator's comparison, API tokens shown once, the suspension notice, the
window sign, the language switch, and dates on the site's clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit.models import AuditEntry
from server.campaigns.models import Campaign
from server.core.const import CSRF_COOKIE, SESSION_COOKIE
from server.sites.models import Gateway, Site
from server.tenancy.models import Organisation
from tests.admin_world import PASSWORD, make_world
from tests.conftest import Clock
from tests.web_world import browser_of

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def error_of(page: str, field: str) -> str | None:
    """The error shown next to a field, and only if the field points at it."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    if found is None:
        return None
    tag = re.search(rf'<(?:input|select|textarea) id="{field}"[^>]*>', page)
    assert tag is not None, field
    assert f"{field}-error" in tag.group(0), tag.group(0)
    assert 'aria-invalid="true"' in tag.group(0), tag.group(0)
    return found.group(1)


def post(client, url, browser, form, lang="de"):
    headers = {"Cookie": browser.cookie, "Accept-Language": lang}
    return client.post(url, data=form | {"csrf_token": browser.csrf}, headers=headers, follow_redirects=False)


def get(client, url, browser, lang="de"):
    return client.get(url, headers={"Cookie": browser.cookie, "Accept-Language": lang})


def test_signing_in_sets_the_sessions_cookies_and_a_wrong_password_is_shown_then_locked_out(
    client, session: Session, clock: Clock
):
    make_world(session, clock())
    wrong = {"email": "owner@alpha.example", "password": "not it", "next": "/admin/sites"}
    answer = client.post("/admin/login", data=wrong, headers={"Accept-Language": "en"})
    assert answer.status_code == 401
    assert error_of(answer.text, "password") == "Wrong e-mail or password."
    for _ in range(4):
        client.post("/admin/login", data=wrong)
    locked = client.post(
        "/admin/login", data=wrong | {"password": PASSWORD}, headers={"Accept-Language": "de"}
    )
    assert locked.status_code == 429  # the admin API's lockout: five failures for this e-mail
    assert error_of(locked.text, "password") == (
        "Zu viele fehlgeschlagene Anmeldungen. Warten Sie 15 Minuten und versuchen Sie es dann noch einmal."
    )


def test_a_sign_in_posted_from_another_site_is_refused(client, session: Session, clock: Clock):
    make_world(session, clock())
    form = {"email": "owner@alpha.example", "password": PASSWORD}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        answer = client.post("/admin/login", data=form, headers=headers, follow_redirects=False)
        assert answer.status_code == 403
        assert "set-cookie" not in answer.headers
    assert client.post("/admin/login", data=form, follow_redirects=False).status_code == 303


def test_signing_in_goes_to_the_page_asked_for_and_never_to_another_host(client, session: Session, clock):
    make_world(session, clock())
    for target, lands in (
        ("/admin/sites", "/admin/sites"),
        ("https://evil.example/", "/admin"),
        ("//x", "/admin"),
    ):
        form = {"email": "Owner@Alpha.example ", "password": PASSWORD, "next": target}
        answer = client.post("/admin/login", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == lands
        cookies = answer.headers.get_list("set-cookie")
        assert any(c.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in c for c in cookies)
        assert any(c.startswith(f"{CSRF_COOKIE}=") for c in cookies)


def test_a_change_without_the_forms_csrf_token_changes_nothing(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    browser = browser_of(world, "owner_a")
    site_id = world.ids["a"]["site_id"]
    form = {"name": "Forged", "timezone": "Europe/Berlin", "language": "de", "version": "1"}
    form |= {"quiet_start": "21:00", "quiet_end": "08:00"}
    answer = client.post(f"/admin/sites/{site_id}", data=form, headers={"Cookie": browser.cookie})
    assert answer.status_code == 403
    forged = client.post(
        f"/admin/sites/{site_id}", data=form | {"csrf_token": "guessed"}, headers={"Cookie": browser.cookie}
    )
    assert forged.status_code == 403
    session.expire_all()
    assert session.get(Site, site_id).name == "alpha door"


def site_form(**changes: str) -> dict[str, str]:
    form = {"name": "alpha door", "address": "", "timezone": "Europe/Berlin", "language": "de"}
    return form | {"quiet_start": "21:00", "quiet_end": "08:00", "version": "1"} | changes


def test_errors_are_next_to_their_fields_in_the_pages_language(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    browser = browser_of(world, "editor_a")
    url = f"/admin/sites/{world.ids['a']['site_id']}"
    german = post(client, url, browser, site_form(quiet_start="25:00", name="   "))
    assert german.status_code == 422
    assert error_of(german.text, "quiet_start") == "Geben Sie eine Uhrzeit als HH:MM ein, etwa 21:00."
    assert error_of(german.text, "name") == "Bitte ausfüllen."
    english = post(client, url, browser, site_form(quiet_end="21:00"), lang="en")
    assert english.status_code == 422  # the service's rule: a window from 21:00 to 21:00 means nothing
    assert error_of(english.text, "quiet_end") == (
        "Quiet hours need a start and an end that differ, such as 21:00 to 08:00."
    )
    assert 'value="25:00"' not in english.text


def test_a_stale_edit_says_someone_else_changed_it_and_shows_what(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    url = f"/admin/sites/{world.ids['a']['site_id']}"
    first = post(client, url, browser_of(world, "owner_a"), site_form(address="Parkstraße 1"))
    assert first.status_code == 303, first.text
    stale = post(client, url, browser_of(world, "editor_a"), site_form(address="Hauptstraße 9"), lang="en")
    assert stale.status_code == 409
    assert "Someone else changed this while you were editing." in stale.text
    current = re.search(r'<p class="current" id="address-current">[^<]*<strong>([^<]*)</strong>', stale.text)
    assert current is not None
    assert current.group(1) == "Parkstraße 1"
    assert "Hauptstraße 9</textarea>" in stale.text  # the person's own value is kept in the form
    assert 'name="version" value="2"' in stale.text  # saving again overwrites, knowingly
    again = post(client, url, browser_of(world, "editor_a"), site_form(address="Hauptstraße 9", version="2"))
    assert again.status_code == 303
    session.expire_all()
    assert session.get(Site, world.ids["a"]["site_id"]).address == "Hauptstraße 9"


def campaign_form(world, **changes: str) -> dict[str, str]:
    form = {
        "name": "alpha helpers",
        "kind": "volunteer",
        "cta_url": "https://alpha.example.org/help",
        "priority": "0",
        "site_ids": str(world.ids["a"]["site_id"]),
        "variants-0-language": "de",
        "variants-0-label": "A",
        "variants-0-title": "Helfen?",
        "variants-0-body": "Bitte.",
        "variants-0-cta_label": "Ja",
        "version": "1",
    }
    return form | changes


def test_a_changed_budget_is_saved_only_after_the_comparison_was_confirmed(
    client, session: Session, clock: Clock
):
    world = make_world(session, clock())
    browser = browser_of(world, "editor_a")
    campaign_id = world.ids["a"]["campaign_id"]
    url = f"/admin/campaigns/{campaign_id}/edit"
    shown = post(client, url, browser, campaign_form(world, daily_budget="3"), lang="en")
    assert shown.status_code == 200
    assert "Check the effect first" in shown.text
    assert "Prompts per day (budget)" in shown.text
    session.expire_all()
    assert session.get(Campaign, campaign_id).daily_budget is None  # not yet
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', shown.text))
    assert carried["daily_budget"] == "3"
    assert carried["variants-0-title"] == "Helfen?"
    back = post(client, url, browser, carried | {"back": "yes"})
    assert back.status_code == 200
    assert 'value="3"' in back.text
    saved = post(client, url, browser, carried | {"confirmed": "yes"})
    assert saved.status_code == 303, saved.text
    session.expire_all()
    assert session.get(Campaign, campaign_id).daily_budget == 3
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.organisation_id == world.ids["a"]["org_id"])
    )
    assert {"policy.simulate", "campaign.update"} <= set(actions)


def test_a_priority_alone_needs_no_comparison(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    campaign_id = world.ids["a"]["campaign_id"]
    saved = post(
        client,
        f"/admin/campaigns/{campaign_id}/edit",
        browser_of(world, "editor_a"),
        campaign_form(world, priority="7"),
    )
    assert saved.status_code == 303
    session.expire_all()
    assert session.get(Campaign, campaign_id).priority == 7


def test_an_api_token_is_shown_once(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    browser = browser_of(world, "owner_a")
    created = post(
        client,
        "/admin/account/tokens",
        browser,
        {"name": "report", "scope": "read", "expires_in_days": "30"},
        "en",
    )
    assert created.status_code == 201
    token = re.search(r'<pre id="new-token"><code>(nat_[^<]+)</code></pre>', created.text)
    assert token is not None
    listed = client.get("/admin/api/v1/auth/me", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert listed.status_code == 200
    assert token.group(1) not in get(client, "/admin/account", browser).text


def test_admins_of_a_suspended_charity_see_a_notice(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    session.get(Organisation, world.ids["a"]["org_id"]).suspended_at = datetime(2026, 11, 1, tzinfo=UTC)
    session.commit()
    page = get(client, "/admin/campaigns", browser_of(world, "viewer_a"), lang="en")
    assert "Suspended by the platform operator:" in page.text
    assert "alpha e.V." in page.text
    assert (
        "Suspended by the platform operator:" not in get(client, "/admin", browser_of(world, "owner_b")).text
    )


def test_the_window_sign_names_the_charity_and_leads_to_the_sites_page(
    client, session: Session, clock: Clock
):
    world = make_world(session, clock())
    session.get(Organisation, world.ids["a"]["org_id"]).name = "Hospiz <am> Park & Co"
    session.commit()
    site_id = world.ids["a"]["site_id"]
    for lang, heading in (
        ("de", "Hier werden Handys erkannt"),
        ("en", "Phones that opted in are recognised"),
    ):
        sign = get(client, f"/admin/sites/{site_id}/sign.svg?lang={lang}", browser_of(world, "viewer_a"))
        assert sign.status_code == 200
        assert sign.headers["content-type"].startswith("image/svg+xml")
        assert 'width="148mm" height="210mm"' in sign.text  # A5
        assert heading in sign.text
        assert "Hospiz &lt;am&gt; Park &amp; Co" in sign.text
        assert f"/site/{site_id}</text>" in sign.text
        assert re.search(r'<path transform="translate\(4 4\)" d="(M\d+ \d+h\d+v1h-\d+z)+"', sign.text)
        public = client.get(f"/site/{site_id}?lang={lang}")
        assert public.status_code == 200
        assert heading in public.text
        assert f"/mobile/v1/privacy?lang={lang}" in public.text
    assert client.get("/site/999999").status_code == 404


def test_the_language_switch_is_remembered(client, session: Session, clock: Clock):
    switched = client.get(
        "/admin/language/en?next=/admin/login", headers={"Accept-Language": "de"}, follow_redirects=False
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/admin/login"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith("nahbar_lang=en")
    page = client.get("/admin/login", headers={"Accept-Language": "de", "Cookie": "nahbar_lang=en"})
    assert '<html lang="en">' in page.text
    assert "Sign in" in page.text
    assert '<html lang="de">' in client.get("/admin/login", headers={"Accept-Language": "de"}).text


def test_times_are_on_the_sites_clock_in_the_pages_locale(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    gateway = session.get(Gateway, world.ids["a"]["gateway_id"])
    gateway.enrolled_at = gateway.last_seen_at = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    gateway.last_heartbeat = {"version": "0.1.0", "adverts_seen_per_s": 1234.5, "outbox_depth": 12000}
    session.commit()
    url = f"/admin/gateways/{gateway.id}"
    german = get(client, url, browser_of(world, "viewer_a"), "de").text
    assert "25.11.2026, 12:00:00" in german  # Berlin is an hour ahead of UTC in November
    assert "1.234,5" in german
    assert "12.000" in german
    english = get(client, url, browser_of(world, "viewer_a"), "en").text
    assert "25 Nov 2026, 12:00:00" in english
    assert "1,234.5" in english


def test_every_page_allows_this_server_only(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    for url in ("/admin/login", "/admin", f"/admin/campaigns/{world.ids['a']['campaign_id']}/edit"):
        page = get(client, url, browser_of(world, "owner_a"))
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe" not in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), url
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), url


def test_a_gateway_that_stopped_reporting_needs_attention(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    gateway = session.get(Gateway, world.ids["a"]["gateway_id"])
    gateway.enrolled_at = gateway.last_seen_at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # an hour ago
    gateway.last_heartbeat = {"version": "0.1.0", "scanner_state": "scanning"}
    session.commit()
    browser = browser_of(world, "viewer_a")
    listed = get(client, "/admin/gateways", browser, "en").text
    assert '<strong class="bad">needs attention: its heartbeats are late</strong>' in listed
    page = get(client, f"/admin/gateways/{gateway.id}", browser, "de").text
    assert "braucht Aufmerksamkeit: Lebenszeichen bleiben aus" in page
    assert "beacon-agent doctor" in page


def test_explain_says_why_in_plain_words(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    site_id = world.ids["a"]["site_id"]
    browser = browser_of(world, "viewer_a")
    site = session.get(Site, site_id)
    site.quiet_start, site.quiet_end = "11:30", "12:30"  # noon in Berlin, now
    session.commit()
    quiet = get(client, f"/admin/explain?site_id={site_id}&dwell_s=20", browser, "en").text
    assert "It is inside this site&#39;s quiet hours." in quiet
    assert '<li class="ok"><span class="visually-hidden">Met:</span> The site has a time zone' in quiet
    site.quiet_start, site.quiet_end = "21:00", "08:00"
    session.commit()
    day = get(client, f"/admin/explain?site_id={site_id}&dwell_s=20", browser, "de").text
    assert "An diesem Standort läuft gerade keine Kampagne." in day  # its one campaign is a draft
    unknown = get(client, f"/admin/explain?site_id={site_id}&person=p_nobody", browser, "en")
    assert unknown.status_code == 422
    assert error_of(unknown.text, "person") is not None
