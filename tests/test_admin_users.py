"""The operator's account management: list admin users, disable one (their sessions and tokens end at once,
and they cannot log in) and enable them again; every change is audited."""

from __future__ import annotations

import getpass
import secrets

from typer.testing import CliRunner

from server.accounts.models import ApiToken
from server.cli import app as cli
from server.core.config import get_settings
from server.core.security import hash_token
from tests.admin_world import API, PASSWORD, make_world


def login(client, email, password=PASSWORD):
    answer = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    client.cookies.clear()
    return answer


def test_the_operator_lists_admin_users_by_page_and_filter(client, session, clock):
    world = make_world(session, clock())
    operator = world.headers["operator"]

    first = client.get(f"{API}/users", params={"limit": 2, "sort": "email"}, headers=operator).json()
    assert first["total"] == len(world.users)
    assert [u["email"] for u in first["items"]] == ["editor@alpha.example", "member@alpha.example"]
    second = client.get(f"{API}/users", params={"limit": 2, "offset": 2, "sort": "email"}, headers=operator)
    assert [u["email"] for u in second.json()["items"]] == ["op@nahbar.example", "owner@alpha.example"]

    alpha = client.get(f"{API}/users", params={"q": "ALPHA"}, headers=operator).json()
    assert alpha["total"] == 4
    owner = next(u for u in alpha["items"] if u["email"] == "owner@alpha.example")
    assert owner["memberships"] == [{"organisation_id": world.ids["a"]["org_id"], "role": "owner"}]
    assert (owner["is_operator"], owner["disabled_at"]) == (False, None)
    assert client.get(f"{API}/users", params={"disabled": "true"}, headers=operator).json()["total"] == 0

    refused = client.get(f"{API}/users", headers=world.headers["owner_a"])
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")


def test_a_disabled_user_is_shut_out_at_once_and_can_be_let_back_in(client, session, clock):
    world = make_world(session, clock())
    operator, editor = world.headers["operator"], world.headers["editor_a"]
    user_id = world.users["editor_a"].id
    bearer = secrets.token_urlsafe(16)
    session.add(ApiToken(user_id=user_id, name="ci", token_hash=hash_token(bearer), scopes=["read", "write"]))
    session.commit()
    token = {"Authorization": f"Bearer {bearer}"}
    assert client.get(f"{API}/auth/me", headers=editor).status_code == 200
    assert client.get(f"{API}/auth/me", headers=token).status_code == 200

    clock.advance(60)
    disabled = client.post(f"{API}/users/{user_id}/disable", headers=operator)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled_at"] is not None

    assert client.get(f"{API}/auth/me", headers=editor).status_code == 401
    assert client.get(f"{API}/auth/me", headers=token).status_code == 401
    assert login(client, "editor@alpha.example").status_code == 401
    listed = client.get(f"{API}/users", params={"disabled": "true"}, headers=operator).json()
    assert [u["id"] for u in listed["items"]] == [user_id]
    again = client.post(f"{API}/users/{user_id}/disable", headers=operator)
    assert again.json()["disabled_at"] == disabled.json()["disabled_at"]  # idempotent

    enabled = client.post(f"{API}/users/{user_id}/enable", headers=operator)
    assert (enabled.status_code, enabled.json()["disabled_at"]) == (200, None)
    assert login(client, "editor@alpha.example").status_code == 200
    # What was ended stays ended: a disabled account's credentials may have been the reason.
    assert client.get(f"{API}/auth/me", headers=editor).status_code == 401
    assert client.get(f"{API}/auth/me", headers=token).status_code == 401

    trail = client.get(
        f"{API}/audit", params={"entity": "admin_user", "entity_id": str(user_id)}, headers=operator
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("admin_user.enable", f"user:{world.users['operator'].id}"),
        ("admin_user.disable", f"user:{world.users['operator'].id}"),
    ]
    assert trail[1]["before"] == {"disabled_at": None}
    assert trail[1]["after"]["disabled_at"] is not None
    assert trail[0]["after"] == {"disabled_at": None}


def test_the_operator_cannot_disable_themselves_and_unknown_users_are_404(client, session, clock):
    world = make_world(session, clock())
    operator = world.headers["operator"]
    own = client.post(f"{API}/users/{world.users['operator'].id}/disable", headers=operator)
    assert (own.status_code, own.json()["code"]) == (409, "conflict")
    assert client.get(f"{API}/auth/me", headers=operator).status_code == 200
    assert client.post(f"{API}/users/999999/disable", headers=operator).status_code == 404


def test_create_admin_makes_an_operator_and_says_where_to_log_in(client, database_url, monkeypatch):
    monkeypatch.setenv("NAHBAR_DATABASE_URL", database_url)
    monkeypatch.setenv("NAHBAR_PUBLIC_URL", "https://nahbar.example")
    monkeypatch.setattr(getpass, "getpass", lambda _prompt="": PASSWORD)  # the terminal, at the edge
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["create-admin", "--email", "First@Nahbar.example"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "POST https://nahbar.example/admin/api/v1/auth/login" in result.output
    assert "https://nahbar.example/docs" in result.output
    answer = login(client, "first@nahbar.example")
    assert answer.status_code == 200
    assert answer.json()["user"]["is_operator"] is True
