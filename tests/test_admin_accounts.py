"""Login, lockout, sessions with CSRF, scoped API tokens and their revocation, password change, invites."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.accounts.models import LoginAttempt
from server.app import create_app
from server.core import const
from server.core.config import Settings
from tests.admin_world import API, PASSWORD, add_user, make_world


def login(client, email, password=PASSWORD):
    answer = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    client.cookies.clear()  # each test passes its caller's credentials explicitly
    return answer


def session_headers(answer) -> dict[str, str]:
    cookie = answer.cookies[const.SESSION_COOKIE]
    return {"Cookie": f"{const.SESSION_COOKIE}={cookie}", "X-CSRF-Token": answer.json()["csrf_token"]}


def test_login_sets_a_hardened_session_cookie_and_me_knows_the_roles(client, session, clock):
    world = make_world(session, clock())
    answer = login(client, "Owner@Alpha.example ")
    assert answer.status_code == 200, answer.text
    cookies = answer.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(f"{const.SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "samesite=lax" in session_cookie.lower()
    assert "Path=/admin" in session_cookie
    assert "Secure" in session_cookie  # NAHBAR_COOKIE_SECURE defaults to true outside development
    me = client.get(f"{API}/auth/me", headers=session_headers(answer)).json()
    assert me["email"] == "owner@alpha.example"
    assert me["memberships"] == [{"organisation_id": world.ids["a"]["org_id"], "role": "owner"}]
    assert answer.json()["user"] == me


def test_the_operator_chooses_secure_cookies_and_the_session_lifetime(settings, clock, session):
    make_world(session, clock())
    local = settings.model_copy(update={"cookie_secure": False, "session_lifetime_seconds": 600})
    with TestClient(create_app(local, clock=clock)) as client:
        answer = login(client, "owner@alpha.example")
        assert answer.status_code == 200
        cookies = answer.headers.get_list("set-cookie")
        assert not any("Secure" in c for c in cookies)
        assert all("Max-Age=600" in c for c in cookies)
        headers = session_headers(answer)
        assert client.get(f"{API}/auth/me", headers=headers).status_code == 200
        clock.advance(601)
        assert client.get(f"{API}/auth/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("environment", "public_url", "secure"),
    [
        ("development", "http://127.0.0.1:8000", False),  # browsers drop Secure cookies over http
        ("development", "http://localhost:8000", False),
        ("development", "http://localhost.example.org", True),
        ("development", "https://nahbar.example", True),
        ("test", "http://127.0.0.1:8000", True),
        ("production", "http://localhost:8000", True),
    ],
)
def test_cookies_are_secure_unless_a_development_server_runs_on_localhost(
    monkeypatch, environment, public_url, secure
):
    monkeypatch.setenv("NAHBAR_ENVIRONMENT", environment)
    monkeypatch.setenv("NAHBAR_PUBLIC_URL", public_url)
    monkeypatch.setenv("NAHBAR_SECRET_KEY", "k" * 40)
    assert Settings(_env_file=None).cookie_secure is secure
    monkeypatch.setenv("NAHBAR_COOKIE_SECURE", str(not secure).lower())
    assert Settings(_env_file=None).cookie_secure is not secure  # the operator's choice wins


def test_the_operator_chooses_the_lockout_thresholds(settings, clock, session):
    make_world(session, clock())
    strict = settings.model_copy(
        update={"max_failures_per_account": 2, "max_failures_per_client": 3, "login_window_seconds": 120}
    )
    with TestClient(create_app(strict, clock=clock)) as client:
        for _ in range(2):
            assert login(client, "owner@alpha.example", "wrong password").status_code == 401
        locked = login(client, "owner@alpha.example")
        assert (locked.status_code, locked.headers["Retry-After"]) == (429, "120")
        assert "wait 2 minutes" in locked.json()["detail"]
        assert login(client, "nobody@alpha.example", "x").status_code == 401
        assert login(client, "editor@alpha.example").status_code == 429  # the client's third failure
        clock.advance(121)
        assert login(client, "owner@alpha.example").status_code == 200


def test_wrong_passwords_lock_the_account_across_requests_then_time_unlocks_it(
    client, session, clock, settings
):
    make_world(session, clock())
    for _ in range(settings.max_failures_per_account):
        answer = login(client, "owner@alpha.example", "wrong password")
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"
    locked = login(client, "owner@alpha.example")  # even the right password
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert int(locked.headers["Retry-After"]) > 0
    session.expire_all()
    failures = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.succeeded.is_(False))
    assert session.scalar(failures) == settings.max_failures_per_account  # counted in the database
    assert login(client, "editor@alpha.example").status_code == 200  # other accounts are not affected
    clock.advance(settings.login_window_seconds + 1)
    assert login(client, "owner@alpha.example").status_code == 200


def test_unknown_emails_lock_too_so_lockout_does_not_reveal_accounts(client, session, clock, settings):
    make_world(session, clock())
    for _ in range(settings.max_failures_per_account):
        assert login(client, "nobody@alpha.example", "x").status_code == 401
    assert login(client, "nobody@alpha.example", "x").status_code == 429


def test_one_client_guessing_many_accounts_is_slowed_down(client, session, clock, settings):
    make_world(session, clock())
    for n in range(settings.max_failures_per_client):
        assert login(client, f"guess{n}@alpha.example", "x").status_code == 401
    answer = login(client, "owner@alpha.example")
    assert answer.status_code == 429
    assert "address" in answer.json()["detail"]


def test_cookie_changes_need_the_csrf_token(client, session, clock):
    world = make_world(session, clock())
    headers = session_headers(login(client, "owner@alpha.example"))
    site = f"{API}/sites/{world.ids['a']['site_id']}"
    change = {"address": "Hauptstr. 1"}
    without = {k: v for k, v in headers.items() if k != "X-CSRF-Token"} | {"If-Match": '"v1"'}
    assert client.get(site, headers=without).status_code == 200  # reads need no token
    refused = client.patch(site, json=change, headers=without)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    forged = client.patch(site, json=change, headers=without | {"X-CSRF-Token": "guess"})
    assert forged.status_code == 403
    assert client.patch(site, json=change, headers=headers | {"If-Match": '"v1"'}).status_code == 200


def test_logout_ends_the_session(client, session, clock):
    make_world(session, clock())
    headers = session_headers(login(client, "owner@alpha.example"))
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401


def test_api_tokens_are_shown_once_scoped_and_revocable(client, session, clock):
    world = make_world(session, clock())
    headers = session_headers(login(client, "editor@alpha.example"))
    made = client.post(f"{API}/auth/tokens", json={"name": "ci", "scopes": ["read"]}, headers=headers)
    assert made.status_code == 201
    reader = {"Authorization": f"Bearer {made.json()['token']}"}
    listed = client.get(f"{API}/auth/tokens", headers=headers).json()
    assert [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0]

    assert client.get(f"{API}/sites", headers=reader).status_code == 200
    body = {"organisation_id": world.ids["a"]["org_id"], "name": "Shop"}
    refused = client.post(f"{API}/sites", json=body, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    minting = client.post(f"{API}/auth/tokens", json={"name": "more", "scopes": ["write"]}, headers=reader)
    assert minting.status_code == 403  # a leaked token cannot mint more

    writer_made = client.post(
        f"{API}/auth/tokens", json={"name": "w", "scopes": ["read", "write"]}, headers=headers
    )
    writer = {"Authorization": f"Bearer {writer_made.json()['token']}"}
    assert client.post(f"{API}/sites", json=body, headers=writer).status_code == 201  # no CSRF for bearer

    revoked = client.delete(f"{API}/auth/tokens/{made.json()['id']}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get(f"{API}/sites", headers=reader).status_code == 401


def test_expired_tokens_stop_working(client, session, clock):
    make_world(session, clock())
    headers = session_headers(login(client, "editor@alpha.example"))
    made = client.post(
        f"{API}/auth/tokens",
        json={"name": "short", "scopes": ["read"], "expires_in_days": 1},
        headers=headers,
    )
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get(f"{API}/auth/me", headers=bearer).status_code == 200
    clock.advance(86_400 + 1)
    assert client.get(f"{API}/auth/me", headers=bearer).status_code == 401


def test_password_change_ends_other_sessions_and_replaces_the_password(client, session, clock):
    make_world(session, clock())
    here = session_headers(login(client, "viewer@alpha.example"))
    elsewhere = session_headers(login(client, "viewer@alpha.example"))
    url = f"{API}/auth/password"
    wrong = client.post(url, json={"current_password": "nope", "new_password": "x" * 12}, headers=here)
    assert wrong.status_code == 403
    short = client.post(url, json={"current_password": PASSWORD, "new_password": "short"}, headers=here)
    assert short.status_code == 422
    new = "a completely new passphrase"
    assert (
        client.post(url, json={"current_password": PASSWORD, "new_password": new}, headers=here).status_code
        == 204
    )
    assert client.get(f"{API}/auth/me", headers=here).status_code == 200
    assert client.get(f"{API}/auth/me", headers=elsewhere).status_code == 401
    assert login(client, "viewer@alpha.example").status_code == 401
    assert login(client, "viewer@alpha.example", new).status_code == 200


def test_an_invite_link_works_once_and_makes_a_member(client, session, clock):
    world = make_world(session, clock())
    owner = world.headers["owner_a"]
    org_id = world.ids["a"]["org_id"]
    made = client.post(
        f"{API}/organisations/{org_id}/invites",
        json={"email": "Helper@Alpha.example", "role": "editor"},
        headers=owner,
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["url"].endswith(f"/admin/invite#{token}")
    listed = client.get(f"{API}/organisations/{org_id}/invites", headers=owner).json()
    assert all("token" not in invite for invite in listed)

    accept = {"token": token, "password": "my own long passphrase"}
    assert client.post(f"{API}/invites/accept", json=accept | {"password": "short"}).status_code == 422
    joined = client.post(f"{API}/invites/accept", json=accept)
    assert joined.status_code == 200, joined.text
    assert joined.json()["memberships"] == [{"organisation_id": org_id, "role": "editor"}]
    assert client.post(f"{API}/invites/accept", json=accept).status_code == 410
    assert login(client, "helper@alpha.example", "my own long passphrase").status_code == 200


def test_an_invite_for_an_existing_account_needs_its_password(client, session, clock):
    world = make_world(session, clock())
    add_user(session, "known@beta.example")
    session.commit()
    made = client.post(
        f"{API}/organisations/{world.ids['a']['org_id']}/invites",
        json={"email": "known@beta.example"},
        headers=world.headers["owner_a"],
    ).json()
    wrong = client.post(f"{API}/invites/accept", json={"token": made["token"], "password": "guessing"})
    assert wrong.status_code == 403
    right = client.post(f"{API}/invites/accept", json={"token": made["token"], "password": PASSWORD})
    assert right.status_code == 200
    assert right.json()["memberships"][0]["role"] == "viewer"


def test_guessing_passwords_through_an_invite_counts_towards_the_lockout(client, session, clock, settings):
    world = make_world(session, clock())
    made = client.post(
        f"{API}/organisations/{world.ids['a']['org_id']}/invites",
        json={"email": "owner@beta.example"},
        headers=world.headers["owner_a"],
    ).json()
    for _ in range(settings.max_failures_per_account):
        wrong = client.post(f"{API}/invites/accept", json={"token": made["token"], "password": "guess"})
        assert wrong.status_code == 403
    right = client.post(f"{API}/invites/accept", json={"token": made["token"], "password": PASSWORD})
    assert right.status_code == 429
    assert login(client, "owner@beta.example").status_code == 429
    clock.advance(settings.login_window_seconds + 1)
    assert (
        client.post(f"{API}/invites/accept", json={"token": made["token"], "password": PASSWORD}).status_code
        == 200
    )


def test_the_last_owner_cannot_leave_or_be_demoted(client, session, clock):
    world = make_world(session, clock())
    owner = world.headers["owner_a"]
    org_id = world.ids["a"]["org_id"]
    members = client.get(f"{API}/organisations/{org_id}/members", headers=owner).json()
    mine = next(m for m in members if m["email"] == "owner@alpha.example")
    url = f"{API}/organisations/{org_id}/members/{mine['id']}"
    assert mine["version"] == 1
    current = owner | {"If-Match": '"v1"'}
    assert client.patch(url, json={"role": "viewer"}, headers=current).status_code == 409
    assert client.delete(url, headers=current).status_code == 409
