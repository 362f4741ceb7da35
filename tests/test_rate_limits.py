"""Abuse limits: token buckets per client address (opt-in) and per device (sightings), injected clock."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from server.api.client import client_address
from server.api.ratelimit import TokenBucketLimiter
from server.app import create_app
from tests.conftest import Clock
from tests.test_sightings import assert_problem, sighting, with_region
from tests.world import make_charity, opt_in

OPT_IN = {"consent_text_version": "2026-11", "scopes": ["volunteer"]}


class Ticks:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_capacity_then_refills_evenly():
    ticks = Ticks()
    limiter = TokenBucketLimiter(capacity=10, period_s=3600, clock=ticks)
    assert [limiter.take("a") for _ in range(10)] == [0.0] * 10
    assert limiter.take("a") == pytest.approx(360)
    ticks.now += 359
    assert limiter.take("a") == pytest.approx(1)
    ticks.now += 1
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0  # keys do not share buckets


def test_bucket_memory_is_bounded():
    ticks = Ticks()
    limiter = TokenBucketLimiter(capacity=2, period_s=60, clock=ticks, max_keys=100)
    for n in range(1_000):
        limiter.take(f"client-{n}")
    assert len(limiter) == 100  # beyond max_keys the least recently used bucket goes
    limiter.take("client-999")
    ticks.now += 60  # idle for a whole period: every bucket is full again, so it is forgotten
    limiter.take("fresh")
    assert len(limiter) == 1


def test_a_busy_bucket_outlives_evictions_of_idle_ones():
    ticks = Ticks()
    limiter = TokenBucketLimiter(capacity=1, period_s=60, clock=ticks, max_keys=3)
    limiter.take("busy")
    for n in range(2):
        limiter.take(f"idle-{n}")
    limiter.take("busy")  # refused, and now the most recently used
    limiter.take("newcomer")  # evicts idle-0, not busy
    assert limiter.take("busy") > 0


def _request(peer: str, forwarded: list[str]) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "client": (peer, 1)})


def test_x_forwarded_for_counts_only_from_a_trusted_proxy():
    trusted = [ip_network("10.0.0.0/8")]
    assert client_address(_request("203.0.113.9", ["198.51.100.1"]), trusted) == "203.0.113.9"
    assert client_address(_request("10.0.0.2", ["198.51.100.1"]), trusted) == "198.51.100.1"
    # The client may write anything to the left; the nearest untrusted hop is what the proxy saw.
    assert (
        client_address(_request("10.0.0.2", ["1.2.3.4, 198.51.100.1, 10.0.0.7"]), trusted) == "198.51.100.1"
    )
    assert client_address(_request("10.0.0.2", ["1.2.3.4", "198.51.100.1"]), trusted) == "198.51.100.1"
    assert client_address(_request("10.0.0.2", []), trusted) == "10.0.0.2"
    assert client_address(_request("10.0.0.2", ["not-an-address"]), trusted) == "10.0.0.2"
    assert client_address(_request("10.0.0.2", ["198.51.100.1"]), []) == "10.0.0.2"


def _opt_in(client: TestClient, **headers: str):
    return client.post("/mobile/v1/optin", json=OPT_IN, headers=headers)


def test_the_eleventh_opt_in_in_an_hour_from_one_client_is_429(client, clock: Clock):
    for _ in range(10):
        assert _opt_in(client).status_code == 201

    refused = _opt_in(client)

    problem = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "360"
    assert problem["retry_after_s"] == 360
    assert "at most 10 an hour" in problem["detail"]
    assert "Retry after 360 s" in problem["detail"]
    other = TestClient(client.app, client=("198.51.100.7", 40_000))  # same app, another address
    assert _opt_in(other).status_code == 201
    clock.advance(359)
    assert _opt_in(client).status_code == 429
    clock.advance(1)
    assert _opt_in(client).status_code == 201


def test_x_forwarded_for_is_ignored_unless_the_peer_is_trusted(client):
    for n in range(10):
        assert _opt_in(client, **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 201
    assert _opt_in(client, **{"X-Forwarded-For": "198.51.100.99"}).status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(settings, clock: Clock):
    behind_proxy = settings.model_copy(update={"trusted_proxies": [ip_network("10.0.0.0/8")]})
    with TestClient(create_app(behind_proxy, clock=clock), client=("10.0.0.2", 5_000)) as proxy:
        for _ in range(10):
            assert _opt_in(proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 201
        spoofed = {"X-Forwarded-For": "1.2.3.4, 198.51.100.1"}  # a forged left hop does not help
        assert _opt_in(proxy, **spoofed).status_code == 429
        assert _opt_in(proxy, **{"X-Forwarded-For": "198.51.100.2"}).status_code == 201


def test_sightings_are_limited_per_device(client, session, clock: Clock):
    with_region(session, make_charity(session, clock()))
    chatty, calm = opt_in(client), opt_in(client)
    for n in range(30):
        answer = client.post(
            "/mobile/v1/sightings", json=sighting(f"ios-rl-{n:04d}", clock()), headers=chatty.headers
        )
        assert answer.status_code == 200, answer.text

    refused = client.post(
        "/mobile/v1/sightings", json=sighting("ios-rl-9999", clock()), headers=chatty.headers
    )

    problem = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "2"  # 30 a minute: a token every 2 s
    assert "at most 30 a minute" in problem["detail"]
    calm_answer = client.post(
        "/mobile/v1/sightings", json=sighting("ios-rl-9999", clock()), headers=calm.headers
    )
    assert calm_answer.status_code == 200
    clock.advance(2)
    again = client.post("/mobile/v1/sightings", json=sighting("ios-rl-9999", clock()), headers=chatty.headers)
    assert again.status_code == 200


def test_test_device_pairing_attempts_are_limited_per_device(client, clock: Clock):
    guesser, other = opt_in(client), opt_in(client)
    for n in range(10):
        wrong = client.post(
            "/mobile/v1/me/test-device", json={"code": f"WRONG{n:07d}"}, headers=guesser.headers
        )
        assert_problem(wrong, 422, "invalid_pairing_code")

    refused = client.post("/mobile/v1/me/test-device", json={"code": "WRONG9999999"}, headers=guesser.headers)

    problem = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "360"  # 10 an hour: a try every 6 minutes
    assert "at most 10 an hour" in problem["detail"]
    unaffected = client.post(
        "/mobile/v1/me/test-device", json={"code": "WRONG9999999"}, headers=other.headers
    )
    assert_problem(unaffected, 422, "invalid_pairing_code")
    clock.advance(360)
    again = client.post("/mobile/v1/me/test-device", json={"code": "WRONG9999999"}, headers=guesser.headers)
    assert_problem(again, 422, "invalid_pairing_code")
