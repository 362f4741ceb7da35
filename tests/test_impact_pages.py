"""The impact pages over HTTP, on SQLite and PostgreSQL: the results page shows the seeded history's funnel
and suppressions as charts with tables (the same numbers the service counts by hand), filters narrow them,
the CSV links download with the page's session; the variants page says "not enough data" on noise; open
data is switched on per site; webhooks are added with their secret shown once, tested, rotated, changed
and deleted; the confirmation secret is switched on and off."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from server.campaigns.models import CampaignVariant
from server.core.const import CSRF_COOKIE
from server.sites.models import Site
from server.webhooks.models import WebhookEndpoint
from tests.admin_world import add_user, make_world, signed_in
from tests.conftest import Clock
from tests.impact_world import open_street, seed_history
from tests.web_world import Browser, browser_of

DAY = "2026-11-25"


def browser(session: Session, org_id: int, clock: Clock, role: str = "editor") -> Browser:
    user = add_user(session, f"{role}@hospiz.example", roles={org_id: role})
    headers = signed_in(session, user, clock.now)
    session.commit()
    csrf = headers["X-CSRF-Token"]
    return Browser(f"{headers['Cookie']}; {CSRF_COOKIE}={csrf}", csrf)


def get(client, url, who: Browser, lang="en"):
    return client.get(url, headers={"Cookie": who.cookie, "Accept-Language": lang})


def post(client, url, who: Browser, form, lang="en"):
    headers = {"Cookie": who.cookie, "Accept-Language": lang}
    return client.post(url, data=form | {"csrf_token": who.csrf}, headers=headers, follow_redirects=False)


def row(page: str, name: str) -> str | None:
    found = re.search(rf'<th scope="row">{re.escape(name)}</th><td>([^<]*)</td>', page)
    return found.group(1) if found else None


def test_the_results_page_shows_the_seeded_history(quiet_client, session: Session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    street.fold()
    org = street.charity.organisation_id
    who = browser(session, org, clock, "viewer")
    url = f"/admin/organisations/{org}/impact?since={DAY}&until={DAY}"
    page = get(quiet_client, url, who).text
    steps = {k: row(page, k) for k in ("Passers-by seen", "Eligible", "Prompted", "Opened", "Accepted")}
    assert steps == {"Passers-by seen": "5", "Eligible": "3", "Prompted": "3", "Opened": "2", "Accepted": "1"}
    assert row(page, "Not here") == "1"
    assert row(page, "Did not stay long enough") == "1"
    assert row(page, "Did not consent to this kind") == "1"
    # Each chart is an image with a title, its bars scaled to the largest count (5 passers-by: the full 256).
    funnel = re.search(
        r'<svg class="bars" id="funnel-chart" role="img" aria-labelledby="funnel-chart-title".*?</svg>',
        page,
        re.S,
    )
    assert funnel is not None
    widths = [float(w) for w in re.findall(r'<rect x="0" y="\d+" width="([\d.]+)"', funnel.group(0))]
    assert widths[:3] == [256.0, pytest.approx(256 * 3 / 5), pytest.approx(256 * 3 / 5)]
    assert '<title id="funnel-chart-title">' in funnel.group(0)
    german = get(quiet_client, url, who, "de").text
    assert row(german, "Vorbeigehende gesehen") == "5"
    assert row(german, "Zu kurz geblieben") == "1"
    assert "Wirkung von hospiz e.V." in german
    # The downloads are the admin API's, and the page's session (a cookie) is enough for them.
    link = re.search(r'<a href="([^"]+funnel\.csv[^"]*)" download>', page)
    assert link is not None
    csv = quiet_client.get(link.group(1).replace("&amp;", "&"), headers={"Cookie": who.cookie})
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"].startswith("text/csv")
    assert DAY in csv.text
    held = re.search(r'<a href="([^"]+suppressions\.csv[^"]*)" download>', page)
    assert held is not None
    assert (
        "dwell_too_short"
        in quiet_client.get(held.group(1).replace("&amp;", "&"), headers={"Cookie": who.cookie}).text
    )


def test_filters_narrow_the_results_and_a_wrong_day_is_said_next_to_its_field(
    quiet_client, session: Session, clock: Clock
):
    street = open_street(quiet_client, session, clock)
    seed_history(street)
    street.fold()
    org, campaign = street.charity.organisation_id, street.charity.campaign_id
    who = browser(session, org, clock)
    by_campaign = get(
        quiet_client, f"/admin/organisations/{org}/impact?campaign_id={campaign}&since={DAY}", who
    )
    assert by_campaign.status_code == 200
    assert row(by_campaign.text, "Passers-by seen") == "–"  # seen before a campaign is chosen
    assert row(by_campaign.text, "Prompted") == "3"
    assert "do not narrow them" in by_campaign.text
    wrong = get(quiet_client, f"/admin/organisations/{org}/impact?since=25.11.2026", who)
    assert wrong.status_code == 422
    assert 'id="since-error">Enter a day as YYYY-MM-DD, or leave it empty.</p>' in wrong.text
    backwards = get(quiet_client, f"/admin/organisations/{org}/impact?since={DAY}&until=2026-11-01", who)
    assert backwards.status_code == 422
    assert "must not be after the last" in backwards.text
    other = make_world(session, clock.now)
    foreign_site = other.ids["b"]["site_id"]
    assert (
        get(quiet_client, f"/admin/organisations/{org}/impact?site_id={foreign_site}", who).status_code == 404
    )


def test_the_variants_page_calls_noise_noise(quiet_client, session: Session, clock: Clock):
    street = open_street(quiet_client, session, clock)
    campaign = street.charity.campaign_id
    session.add(
        CampaignVariant(
            campaign_id=campaign, language="de", label="B", title="Hilfe?", body="Ja.", cta_label="Ok"
        )
    )
    session.commit()
    seed_history(street)
    street.fold()
    org = street.charity.organisation_id
    who = browser(session, org, clock, "viewer")
    page = get(quiet_client, f"/admin/organisations/{org}/impact/variants?since={DAY}&until={DAY}", who).text
    assert "Not enough data yet to tell variants A and B apart." in page
    assert "percentage points (95% range" in page
    assert "winner" not in page.lower()
    german = get(
        quiet_client, f"/admin/organisations/{org}/impact/variants?since={DAY}&until={DAY}", who, "de"
    ).text
    assert "Noch nicht genug Daten, um die Varianten A und B zu unterscheiden." in german


def test_open_data_is_published_per_site(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    org, site = world.ids["a"]["org_id"], world.ids["a"]["site_id"]
    editor = browser_of(world, "editor_a")
    url = f"/admin/organisations/{org}/open-data"
    page = get(client, url, editor).text
    assert "/open-data/v1/alpha/daily.csv" in page
    assert "/open-data/v1/alpha/daily.json" in page
    published = post(client, f"{url}/sites/{site}", editor, {"publish": "yes", "version": "1"})
    assert published.status_code == 303, published.text
    session.expire_all()
    assert session.get(Site, site).open_data is True
    stale = post(client, f"{url}/sites/{site}", editor, {"publish": "no", "version": "1"})
    assert stale.status_code == 409
    assert post(client, url, editor, {"licence": "CC0-1.0", "title": "Passers-by"}).status_code == 303
    assert 'value="CC0-1.0" selected' in get(client, url, editor).text
    bad = post(client, url, editor, {"licence": "x", "title": ""})
    assert bad.status_code == 422
    viewer = get(client, url, browser_of(world, "viewer_a")).text
    assert "<dd>CC0-1.0</dd>" in viewer
    assert "/open-data/sites/" not in viewer


def test_a_webhook_is_added_tested_rotated_changed_and_deleted(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    org = world.ids["a"]["org_id"]
    editor = browser_of(world, "editor_a")
    base = f"/admin/organisations/{org}/webhooks"
    refused = post(client, base, editor, {"url": "ftp://x.example", "event_types": "prompt.accepted"})
    assert refused.status_code == 422
    assert 'id="url-error">Enter an https:// address' in refused.text
    none = post(client, base, editor, {"url": "https://hooks.example.org/in"})
    assert none.status_code == 422
    assert "Choose at least one event." in none.text
    created = post(
        client,
        base,
        editor,
        {"url": "https://hooks.example.org/in", "event_types": ["prompt.accepted", "prompt.declined"]},
    )
    assert created.status_code == 201, created.text
    secret = re.search(r'<pre id="new-secret"><code>(whsec_[^<]+)</code></pre>', created.text)
    assert secret is not None
    endpoint_id = session.query(WebhookEndpoint).filter_by(url="https://hooks.example.org/in").one().id
    listing = get(client, base, editor).text
    assert "https://hooks.example.org/in" in listing
    assert secret.group(1) not in listing  # shown once
    url = f"{base}/{endpoint_id}"
    tested = post(client, f"{url}/test", editor, {})
    assert tested.status_code == 303
    log = get(client, tested.headers["location"], editor).text
    assert "The test event is queued." in log
    assert re.search(r"<td>Test event</td>\s*<td>waiting</td>", log)
    rotated = post(client, f"{url}/rotate", editor, {})
    assert rotated.status_code == 201
    again = re.search(r'<pre id="new-secret"><code>(whsec_[^<]+)</code></pre>', rotated.text)
    assert again is not None
    assert again.group(1) != secret.group(1)
    changed = post(
        client,
        url,
        editor,
        {"url": "https://hooks.example.org/two", "event_types": "gateway.needs_attention"},
    )
    assert changed.status_code == 303
    session.expire_all()
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    assert (endpoint.url, endpoint.event_types, endpoint.enabled) == (
        "https://hooks.example.org/two",
        ["gateway.needs_attention"],
        False,  # the box "on" was not ticked
    )
    viewer = get(client, url, browser_of(world, "viewer_a")).text
    assert "/rotate" not in viewer
    assert "/delete" not in viewer
    assert post(client, f"{url}/delete", browser_of(world, "viewer_a"), {}).status_code == 403
    assert post(client, f"{url}/delete", editor, {}).status_code == 303
    session.expire_all()
    assert session.get(WebhookEndpoint, endpoint_id) is None


def test_the_confirmation_secret_is_switched_on_rotated_and_off(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    org = world.ids["a"]["org_id"]
    editor = browser_of(world, "editor_a")
    page = get(client, f"/admin/organisations/{org}/webhooks", editor).text
    assert "Confirmations are off." in page
    assert "/impact/v1/confirmations" in page
    on = post(client, f"/admin/organisations/{org}/confirmation-secret", editor, {})
    assert on.status_code == 201
    first = re.search(r'<pre id="confirmation-secret"><code>(whsec_[^<]+)</code></pre>', on.text)
    assert first is not None
    assert "Confirmations are on since" in on.text
    rotated = post(client, f"/admin/organisations/{org}/confirmation-secret", editor, {})
    assert "still verifies until" in rotated.text
    assert first.group(1) not in rotated.text
    off = post(client, f"/admin/organisations/{org}/confirmation-secret/delete", editor, {})
    assert off.status_code == 303
    assert "Confirmations are off." in get(client, f"/admin/organisations/{org}/webhooks", editor).text


def test_the_navigations_results_link_leads_to_the_one_organisations_results(
    quiet_client, session: Session, clock: Clock
):
    world = make_world(session, clock())
    owner_a = browser_of(world, "owner_a")
    page = get(quiet_client, "/admin", owner_a).text
    assert '<a href="/admin/results">Results</a>' in page
    answer = quiet_client.get("/admin/results", headers={"Cookie": owner_a.cookie}, follow_redirects=False)
    org_a = world.ids["a"]["org_id"]
    assert (answer.status_code, answer.headers["location"]) == (303, f"/admin/organisations/{org_a}/impact")
    # The operator sees every charity: the list to choose from.
    operator = browser_of(world, "operator")
    several = quiet_client.get("/admin/results", headers={"Cookie": operator.cookie}, follow_redirects=False)
    assert (several.status_code, several.headers["location"]) == (303, "/admin/organisations")
    listed = get(quiet_client, "/admin/organisations", operator).text
    for org in ("a", "b"):  # each charity's results one click away
        assert f'href="/admin/organisations/{world.ids[org]["org_id"]}/impact"' in listed
