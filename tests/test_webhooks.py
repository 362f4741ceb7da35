"""Webhooks: signed by the Standard Webhooks specification (checked by its library in a local receiver),
retried with backoff, delivered exactly once after failures, rotated secrets, test events, the delivery log,
the SSRF guard, and who may configure them."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.core.addresses import PublicOnlyTransport
from server.webhooks import service
from server.webhooks.models import WebhookMessage
from server.webhooks.sender import BACKOFF_S, WebhookSender
from tests.admin_world import API, add_user, make_world, signed_in
from tests.conftest import Clock
from tests.impact_world import open_street, seed_history
from tests.webhook_receiver import Receiver, receiving


def _sender(client: TestClient) -> WebhookSender:
    runtime = client.app.state.runtime
    return WebhookSender(runtime.settings, runtime.sessions, runtime.clock)


def _send(client: TestClient) -> int:
    sender = _sender(client)
    try:
        return sender.run()
    finally:
        sender.close()


def _register(client, world, url, who="owner_a", types=("prompt.accepted", "prompt.declined")):
    org = world.ids["a"]["org_id"]
    return client.post(
        f"{API}/organisations/{org}/webhooks",
        json={"url": url, "event_types": list(types), "description": "volunteer system"},
        headers=world.headers[who],
    )


def test_a_receiver_verifies_the_signature_of_an_accepted_prompt(quiet_client, session, clock: Clock):
    street = open_street(quiet_client, session, clock, cta_url="https://hospiz.example.org/mitmachen")
    owner = add_user(session, "owner@hospiz.example", roles={street.charity.organisation_id: "owner"})
    headers = signed_in(session, owner, clock.now)
    session.commit()
    with receiving(Receiver()) as receiver:
        created = quiet_client.post(
            f"{API}/organisations/{street.charity.organisation_id}/webhooks",
            json={"url": receiver.url, "event_types": ["prompt.accepted", "prompt.declined"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        receiver.secrets = [created.json()["secret"]]
        seed_history(street)
        assert _send(quiet_client) == 2
        assert [r.verified is not None for r in receiver.received] == [True, True]
        events = {r.verified["type"]: r.verified["data"] for r in receiver.received if r.verified}
        assert set(events) == {"prompt.accepted", "prompt.declined"}
        assert events["prompt.declined"]["answer"] == "not_here"
        accepted = events["prompt.accepted"]
        assert accepted["campaign_id"] == street.charity.campaign_id
        # No person in the payload: no subscriber id, no pseudonym, no device token.
        assert set(accepted) == {"site_id", "campaign_id", "variant_id", "prompted_at", "answered_at"}
        assert _send(quiet_client) == 0  # nothing more


def test_a_receiver_that_fails_five_times_gets_the_event_later_exactly_once(
    quiet_client, session, clock: Clock
):
    client = quiet_client
    world = make_world(session, clock.now)
    with receiving(Receiver(script=[500, 500, 503, 500, 502])) as receiver:
        created = _register(client, world, receiver.url, types=["campaign.budget_exhausted"])
        assert created.status_code == 201, created.text
        receiver.secrets = [created.json()["secret"]]
        with client.app.state.runtime.sessions.begin() as s:
            queued = service.enqueue(
                s, world.ids["a"]["org_id"], "campaign.budget_exhausted", {"campaign_id": 1}, at=clock.now
            )
        assert queued == 1
        for n in range(5):
            assert _send(client) == 1
            assert _send(client) == 0  # not due again before its backoff
            clock.advance(BACKOFF_S[n])
        assert _send(client) == 1
        clock.advance(timedelta(days=3).total_seconds())
        assert _send(client) == 0
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 6
    assert len(ids) == 1  # the same message id on every retry
    assert all(r.verified is not None for r in receiver.received)
    viewer = signed_in(session, world.users["viewer_a"], clock.now)  # the seeded login has ended by now
    session.commit()
    log = client.get(
        f"{API}/organisations/{world.ids['a']['org_id']}/webhooks/{created.json()['endpoint']['id']}/attempts",
        headers=viewer,
    ).json()
    assert [item["status_code"] for item in log["items"]] == [204, 502, 500, 503, 500, 500]
    with client.app.state.runtime.sessions() as s:
        [message] = s.scalars(select(WebhookMessage)).all()
        assert (message.status, message.attempts) == ("sent", 6)


def test_a_rotated_secret_signs_alongside_the_old_one_for_the_grace_period(
    quiet_client, session, clock: Clock
):
    client = quiet_client
    world = make_world(session, clock.now)
    org = world.ids["a"]["org_id"]
    with receiving(Receiver()) as receiver:
        created = _register(client, world, receiver.url).json()
        old = created["secret"]
        endpoint = created["endpoint"]["id"]
        rotated = client.post(
            f"{API}/organisations/{org}/webhooks/{endpoint}/rotate-secret",
            json={"grace_hours": 24},
            headers=world.headers["editor_a"],
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        test = client.post(
            f"{API}/organisations/{org}/webhooks/{endpoint}/test", headers=world.headers["editor_a"]
        )
        assert test.status_code == 202
        assert test.json()["event_type"] == "webhook.test"
        assert _send(client) == 1
        signatures = receiver.received[-1].headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        for secret in (old, new):  # a receiver with either secret verifies it
            receiver.secrets = [secret]
            last = receiver.received[-1]
            assert receiver.verify(last.body, last.headers) is not None
        clock.advance(timedelta(hours=25).total_seconds())  # the grace period is over: the new one alone
        editor = signed_in(session, world.users["editor_a"], clock.now)
        session.commit()
        client.post(f"{API}/organisations/{org}/webhooks/{endpoint}/test", headers=editor)
        _send(client)
        last = receiver.received[-1]
        assert len(last.headers["webhook-signature"].split(" ")) == 1
        receiver.secrets = [old]
        assert receiver.verify(last.body, last.headers) is None


def test_private_hosts_are_refused_at_registration_and_when_sending(settings, clock: Clock, session):
    strict = settings.model_copy(update={"allow_private_webhook_hosts": False, "scheduler_enabled": False})
    with TestClient(create_app(strict, clock=clock)) as client:
        world = make_world(session, clock.now)
        for url in (
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://10.0.0.8/x",
            "http://example.org/x",
        ):
            answer = _register(client, world, url)
            assert answer.status_code == 422, url
        ok = _register(client, world, "https://hooks.example.org/nahbar")
        assert ok.status_code == 201
        # The name resolves to loopback now (DNS rebinding, or a name pointed at the inside): refused at send.
        runtime = client.app.state.runtime
        loopback = PublicOnlyTransport(resolver=lambda _host, _port: [ipaddress.ip_address("127.0.0.1")])
        sender = WebhookSender(runtime.settings, runtime.sessions, runtime.clock, transport=loopback)
        org, s_id = world.ids["a"]["org_id"], ok.json()["endpoint"]["id"]
        test = client.post(
            f"{API}/organisations/{org}/webhooks/{s_id}/test", headers=world.headers["owner_a"]
        )
        assert test.status_code == 202
        try:
            assert sender.run() == 1
        finally:
            sender.close()
        log = client.get(
            f"{API}/organisations/{org}/webhooks/{s_id}/attempts", headers=world.headers["owner_a"]
        )
        [attempt] = log.json()["items"]
        assert attempt["status_code"] is None
        assert "127.0.0.1" in attempt["error"]


def test_viewers_read_webhooks_but_do_not_configure_and_b_sees_none_of_a(quiet_client, session, clock: Clock):
    client = quiet_client
    world = make_world(session, clock.now)
    org_a, org_b = world.ids["a"]["org_id"], world.ids["b"]["org_id"]
    created = _register(client, world, "https://hooks.alpha.example.org/x").json()
    endpoint = created["endpoint"]["id"]
    assert _register(client, world, "https://hooks.alpha.example.org/y", who="viewer_a").status_code == 403
    viewer = world.headers["viewer_a"]
    assert client.get(f"{API}/organisations/{org_a}/webhooks", headers=viewer).status_code == 200
    for method, path in (
        ("patch", f"/{endpoint}"),
        ("delete", f"/{endpoint}"),
        ("post", f"/{endpoint}/rotate-secret"),
        ("post", f"/{endpoint}/test"),
    ):
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        answer = getattr(client, method)(
            f"{API}/organisations/{org_a}/webhooks{path}", headers=viewer, **kwargs
        )
        assert answer.status_code == 403, (method, path)
    owner_b = world.headers["owner_b"]
    assert client.get(f"{API}/organisations/{org_a}/webhooks", headers=owner_b).status_code == 404
    assert client.get(f"{API}/organisations/{org_b}/webhooks/{endpoint}", headers=owner_b).status_code == 404
    assert (
        client.get(f"{API}/organisations/{org_b}/webhooks/{endpoint}/attempts", headers=owner_b).status_code
        == 404
    )
    listed = client.get(f"{API}/organisations/{org_b}/webhooks", headers=owner_b).json()
    assert {item["organisation_id"] for item in listed} == {org_b}  # B's own seeded endpoint only
    # An event of B's goes to none of A's endpoints.
    with client.app.state.runtime.sessions.begin() as s:
        # Each organisation's own: B has its seeded endpoint, A its seeded one and the one made here.
        assert service.enqueue(s, org_b, "prompt.accepted", {"site_id": 1}) == 1
        assert service.enqueue(s, org_a, "prompt.accepted", {"site_id": 1}) == 2
        queued = s.execute(select(WebhookMessage.endpoint_id)).scalars().all()
        assert sorted(queued) == sorted(
            [world.ids["b"]["endpoint_id"], world.ids["a"]["endpoint_id"], endpoint]
        )
