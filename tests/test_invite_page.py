"""/admin/invite over HTTP, on SQLite and PostgreSQL: the page an invite link leads to accepts the invite
through the same service as the API, in German or English, and shows each problem next to its field."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.tenancy.models import AdminUser, Membership
from tests.admin_world import API, PASSWORD, World, make_world
from tests.conftest import Clock

NEW_PASSWORD = "a new password of some length"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def accept(
    client,
    token: str,
    password: str = NEW_PASSWORD,
    repeat: str | None = None,
    lang: str = "de",
    site=SAME_ORIGIN,
):
    form = {"token": token, "password": password, "password_repeat": password if repeat is None else repeat}
    return client.post("/admin/invite", data=form, headers={"Accept-Language": lang} | site)


def error_of(page: str, field: str) -> str | None:
    """The error shown next to a field, and only if the field points at it."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    if found is None:
        return None
    tag = re.search(rf'<input id="{field}"[^>]*>', page)
    assert tag is not None
    assert f"{field}-error" in tag.group(0), tag.group(0)
    assert 'aria-invalid="true"' in tag.group(0), tag.group(0)
    return found.group(1)


def member_emails(session: Session, world: World) -> set[str]:
    session.expire_all()
    rows = session.execute(
        select(AdminUser.email)
        .join(Membership, Membership.user_id == AdminUser.id)
        .where(Membership.organisation_id == world.ids["a"]["org_id"])
    )
    return set(rows.scalars())


def test_the_link_an_invite_answers_with_leads_to_the_form(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    created = client.post(
        f"{API}/organisations/{world.ids['a']['org_id']}/invites",
        json={"email": "link@alpha.example", "role": "viewer"},
        headers=world.headers["owner_a"],
    )
    assert created.status_code == 201, created.text
    link = urlsplit(created.json()["url"])
    assert link.fragment == created.json()["token"]

    page = client.get(link.path, headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.8"})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert '<html lang="en">' in page.text
    assert '<form method="post" action="/admin/invite"' in page.text
    for field, label in [("token", "Invitation code"), ("password", "New password")]:
        assert f'<label for="{field}">{label}</label>' in page.text
    # Everything it loads or links to is on this server.
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {"/admin/static/web.css", "/admin/static/invite.js"} <= set(urls)
    assert all(url.startswith(("/", "#", "data:,")) and not url.startswith("//") for url in urls), urls
    assert client.get("/admin/static/invite.js").status_code == 200
    assert client.get("/admin/static/web.css").status_code == 200


def test_german_is_the_default_and_english_when_preferred(client):
    assert '<html lang="de">' in client.get("/admin/invite").text
    assert '<html lang="de">' in client.get("/admin/invite", headers={"Accept-Language": "fr, de;q=0.5"}).text
    page = client.get("/admin/invite", headers={"Accept-Language": "de;q=0.4, en-US;q=0.8"})
    assert '<html lang="en">' in page.text


def test_a_valid_invite_creates_the_account_and_the_membership(client, session: Session, clock: Clock):
    world = make_world(session, clock())

    page = accept(client, world.invite_token, lang="en")

    assert page.status_code == 200, page.text
    assert "accept@alpha.example" in page.text
    assert "<form" not in page.text
    assert "accept@alpha.example" in member_emails(session, world)
    login = client.post(f"{API}/auth/login", json={"email": "accept@alpha.example", "password": NEW_PASSWORD})
    assert login.status_code == 200, login.text
    # Used once: the same link now says so, next to the code.
    again = accept(client, world.invite_token, lang="en")
    assert again.status_code == 410
    assert "already used" in (error_of(again.text, "token") or "")


def test_a_bad_token_is_shown_next_to_the_field(client, session: Session, clock: Clock):
    world = make_world(session, clock())

    page = accept(client, "not-an-invite-token-at-all")

    assert page.status_code == 410
    assert error_of(page.text, "token") == (
        "Diese Einladung ist unbekannt, schon benutzt, zurückgezogen oder abgelaufen. "
        "Bitten Sie um eine neue Einladung."
    )
    assert 'value="not-an-invite-token-at-all"' in page.text  # kept, to correct
    assert NEW_PASSWORD not in page.text  # a password is never sent back
    assert "accept@alpha.example" not in member_emails(session, world)


def test_bad_input_shows_the_form_again_with_messages(client, session: Session, clock: Clock):
    world = make_world(session, clock())

    page = accept(client, "", "", lang="en")

    assert page.status_code == 422
    assert error_of(page.text, "token") == "Enter the invitation code."
    assert error_of(page.text, "password") == "Enter a password."
    assert 'role="alert"' in page.text
    assert 'href="#token"' in page.text

    page = accept(client, world.invite_token, NEW_PASSWORD, "something else", lang="en")

    assert page.status_code == 422
    assert error_of(page.text, "password_repeat") == "The two passwords are not the same."
    assert error_of(page.text, "token") is None

    page = accept(client, world.invite_token, "short", lang="en")

    assert page.status_code == 422
    assert error_of(page.text, "password") == "Choose a password of at least 12 characters."
    assert "accept@alpha.example" not in member_emails(session, world)
    # Nothing was used up by the failures: the invite still works.
    assert accept(client, world.invite_token).status_code == 200


def test_an_existing_account_proves_its_password_and_wrong_ones_count(client, session: Session, clock: Clock):
    world = make_world(session, clock())
    session.execute(
        AdminUser.__table__.update()
        .where(AdminUser.email == "member@alpha.example")
        .values(email="accept@alpha.example")
    )
    session.commit()

    wrong = accept(client, world.invite_token, "not the password", lang="en")

    assert wrong.status_code == 403
    assert (
        error_of(wrong.text, "password") == "Your e-mail address already has an account. Enter its password."
    )
    for _ in range(10):
        accept(client, world.invite_token, "not the password")
    locked = accept(client, world.invite_token, PASSWORD, lang="en")
    assert locked.status_code == 429
    assert "Too many wrong passwords" in (error_of(locked.text, "password") or "")


def test_a_cross_site_post_is_refused_and_text_is_escaped(client, session: Session, clock: Clock):
    world = make_world(session, clock())

    refused = accept(client, world.invite_token, site={"Sec-Fetch-Site": "cross-site"})

    assert refused.status_code == 403
    assert "accept@alpha.example" not in member_emails(session, world)
    page = accept(client, '"><script>alert(1)</script>')
    assert "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text
