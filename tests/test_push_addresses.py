"""The guard against server-side request forgery (server/core/addresses.py): which addresses are public, every
address a name resolves to checked, and Web Push refusing, when it connects, an endpoint whose name
resolves to this machine (recorded as failed, not retried) unless the operator allows private push hosts."""

from __future__ import annotations

import ipaddress
import socket
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr

from server.app import create_app
from server.core.addresses import NotPublic, PublicOnlyTransport, public_addresses, why_not_public
from server.delivery.tasks import sweep
from tests.delivery_world import Browser, Peer, add_channel, deliveries, passer_by, subscriber_of, walk_past


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("fc00::1", "a unique-local address"),
        ("fd00:ec2::254", "a unique-local address"),
        ("fec0::1", "a site-local address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.1", "a private address"),  # documentation range
        ("100.64.0.1", "an address not routed on the internet"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64
        ("2002:7f00:1::1", "a loopback address"),  # 6to4
        ("::127.0.0.1", "a reserved address"),  # IPv4-compatible, deprecated
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_which_addresses_are_public(address, kind):
    assert why_not_public(ipaddress.ip_address(address)) == kind


def test_every_address_a_name_resolves_to_is_checked():
    def resolver(host: str, port: int) -> list:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("::ffff:127.0.0.1")]

    with pytest.raises(NotPublic, match=r"push.example.net resolves to ::ffff:7f00:1, a loopback address"):
        public_addresses("push.example.net", 443, resolver)
    only_public = [ipaddress.ip_address("93.184.216.34")]
    assert public_addresses("push.example.net", 443, lambda _h, _p: only_public) == only_public


def test_the_transport_resolves_itself_and_refuses_before_connecting():
    asked = []

    def resolver(host: str, port: int) -> list:
        asked.append((host, port))
        return [ipaddress.ip_address("10.9.8.7")]

    with httpx.Client(transport=PublicOnlyTransport(resolver=resolver)) as client:
        with pytest.raises(NotPublic, match="10.9.8.7, a private address"):
            client.post("https://push.example.net/wpush/1", content=b"x")
    assert asked == [("push.example.net", 443)]


def test_a_name_that_does_not_resolve_is_a_network_failure_worth_retrying():
    def resolver(host: str, port: int) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with httpx.Client(transport=PublicOnlyTransport(resolver=resolver)) as client:
        with pytest.raises(httpx.ConnectError, match="cannot resolve push.example.net"):
            client.post("https://push.example.net/wpush/1", content=b"x")


@pytest.fixture
def web_push_settings(settings):
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    return settings.model_copy(
        update={
            "vapid_private_key": SecretStr(pem.decode()),
            "vapid_subject": "mailto:push-ops@nahbar.example.org",
        }
    )


def settled(session) -> object:
    for _ in range(250):
        [delivery] = deliveries(session, "webpush")
        if delivery.status != "pending" or delivery.last_error:
            return delivery
        time.sleep(0.02)
    raise AssertionError("the Web Push delivery was not settled")


@pytest.mark.parametrize("allowed", [False, True])
def test_a_name_resolving_to_this_machine_is_refused_when_sending(web_push_settings, session, clock, allowed):
    """The channel's row names `localhost`: registered before the rule, or a name whose address changed since
    (what registration cannot see). Only the operator's setting lets the push go there."""
    peer = Peer()
    try:
        settings = web_push_settings.model_copy(update={"allow_private_push_hosts": allowed})
        with TestClient(create_app(settings, clock=clock)) as client:
            _charity, gateway, phone = passer_by(client, session, clock())
            endpoint = peer.url.replace("127.0.0.1", "localhost") + "/push/1"
            add_channel(
                session, subscriber_of(session, phone).id, "webpush", endpoint, **Browser.new().keys()
            )
            walk_past(client, gateway, phone, clock())
            delivery = settled(session)
            if allowed:
                peer.wait_for(1)
                assert (delivery.status, delivery.attempts) == ("sent", 1)
                return
            assert (delivery.status, delivery.attempts) == ("failed", 1)
            assert delivery.last_error == (
                "refused: localhost resolves to 127.0.0.1, a loopback address; "
                "this server pushes to public addresses only"
            )
            clock.advance(3600)
            sweep(client.app.state.runtime)  # a sweep does not try a failed delivery again
            time.sleep(0.2)
            [again] = deliveries(session, "webpush")
            assert (again.status, again.attempts) == ("failed", 1)
            assert peer.received == []
    finally:
        peer.close()
