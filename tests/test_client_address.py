"""Whose address a request comes from, over real HTTP against `nahbar serve`: behind a trusted proxy the login
lockout and the opt-in limit count the forwarded client, not the proxy; without one, an X-Forwarded-For
header written by the client changes nothing (uvicorn's own proxy-header handling, which trusts 127.0.0.1,
is off)."""

from __future__ import annotations

from ipaddress import ip_network

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.accounts.models import LoginAttempt
from server.app import create_app
from tests.admin_world import API, PASSWORD, add_user, make_world
from tests.served import Served

LOGIN = f"{API}/auth/login"
OPERATOR = {"email": "ops@example.org", "password": PASSWORD}
OPT_IN = {"consent_text_version": "2026-11", "scopes": ["volunteer"]}


def _fail_twenty_logins(client: httpx.Client, **headers: str) -> None:
    # Twenty e-mails, one wrong password each: the client's limit (20), not any account's (5), is reached.
    for n in range(20):
        wrong = {"email": f"guess{n}@example.org", "password": "not the password at all"}
        assert client.post(LOGIN, json=wrong, headers=headers).status_code == 401


@pytest.fixture
def operator(session):
    add_user(session, OPERATOR["email"], operator=True)
    session.commit()


@pytest.mark.slow
@pytest.mark.usefixtures("operator")
def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_client(tmp_path, database_url):
    proxy_address = "127.0.0.5"  # not 127.0.0.1, which uvicorn itself would trust
    transport = httpx.HTTPTransport(local_address=proxy_address)
    with (
        Served(tmp_path, database_url, NAHBAR_TRUSTED_PROXIES=proxy_address) as server,
        httpx.Client(base_url=server.url, transport=transport) as proxy,
    ):
        _fail_twenty_logins(proxy, **{"X-Forwarded-For": "198.51.100.1"})

        locked = proxy.post(LOGIN, json=OPERATOR, headers={"X-Forwarded-For": "198.51.100.1"})
        assert locked.status_code == 429
        assert "from this address" in locked.json()["detail"]
        # A hop the client wrote itself, left of what the proxy saw, does not make a new client.
        spoofed = {"X-Forwarded-For": "203.0.113.77, 198.51.100.1"}
        assert proxy.post(LOGIN, json=OPERATOR, headers=spoofed).status_code == 429
        # Another person behind the same proxy still gets in.
        other = proxy.post(LOGIN, json=OPERATOR, headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status_code == 200, other.text


@pytest.mark.slow
@pytest.mark.usefixtures("operator")
def test_without_trusted_proxies_x_forwarded_for_changes_nothing(tmp_path, database_url):
    # From 127.0.0.1, whose X-Forwarded-For uvicorn's default proxy handling would believe.
    with Served(tmp_path, database_url) as server, httpx.Client(base_url=server.url) as client:
        _fail_twenty_logins(client)
        assert client.post(LOGIN, json=OPERATOR).status_code == 429
        for n in range(3):
            forged = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert client.post(LOGIN, json=OPERATOR, headers=forged).status_code == 429

        for _ in range(10):
            assert client.post("/mobile/v1/optin", json=OPT_IN).status_code == 201
        forged = {"X-Forwarded-For": "198.51.100.50"}
        assert client.post("/mobile/v1/optin", json=OPT_IN, headers=forged).status_code == 429


def test_a_wrong_invite_password_behind_a_trusted_proxy_counts_for_the_forwarded_client(
    settings, session, clock
):
    world = make_world(session, clock())
    behind_proxy = settings.model_copy(update={"trusted_proxies": [ip_network("10.0.0.0/8")]})
    with TestClient(create_app(behind_proxy, clock=clock), client=("10.0.0.2", 5_000)) as proxy:
        made = proxy.post(
            f"{API}/organisations/{world.ids['a']['org_id']}/invites",
            json={"email": "owner@beta.example"},
            headers=world.headers["owner_a"],
        ).json()
        wrong = {"token": made["token"], "password": "a guess"}
        answer = proxy.post(f"{API}/invites/accept", json=wrong, headers={"X-Forwarded-For": "198.51.100.1"})
        assert answer.status_code == 403
    session.expire_all()
    assert list(session.scalars(select(LoginAttempt.client))) == ["198.51.100.1"]
