"""Sites, their beacons and gateways through the admin API; the audit trail and the support lists."""

from __future__ import annotations

import uuid

from server.prompts.models import PromptDecision
from server.subscribers.models import Subscriber
from tests.admin_world import API, make_world

HEARTBEAT = {
    "version": "0.1.0",
    "uptime_s": 60,
    "scanner_mode": "passive",
    "adverts_seen_per_s": 10,
    "adverts_kept_per_s": 1,
    "adverts_dropped_per_s": 9,
    "outbox_depth": 0,
    "outbox_dropped_full": 0,
    "outbox_set_aside": 0,
    "scanner_restarts": 0,
    "scanner_power_cycles": 0,
}


def test_sites_validate_time_zone_and_quiet_hours(client, session, clock):
    world = make_world(session, clock())
    body = {
        "organisation_id": world.ids["a"]["org_id"],
        "name": "zoo shop",
        "timezone": "Europe/Berlin",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "address": "Markt 1",
    }
    made = client.post(f"{API}/sites", json=body, headers=world.headers["editor_a"])
    assert made.status_code == 201, made.text
    assert made.headers["ETag"] == '"v1"'
    for bad in ({"timezone": "Mars/Olympus"}, {"timezone": "../../etc/passwd"}, {"quiet_start": "25:00"}):
        answer = client.post(f"{API}/sites", json=body | bad, headers=world.headers["editor_a"])
        assert answer.status_code == 422, bad
        assert answer.json()["code"] == "validation_failed"
    names = client.get(
        f"{API}/sites", params={"sort": "-name", "limit": 1}, headers=world.headers["viewer_a"]
    ).json()
    assert (names["total"], [s["name"] for s in names["items"]]) == (2, ["zoo shop"])
    assert (
        client.get(f"{API}/sites", params={"sort": "secret"}, headers=world.headers["viewer_a"]).status_code
        == 422
    )


def test_a_gateway_is_enrolled_with_the_printed_command_and_shows_its_health(client, session, clock):
    world = make_world(session, clock())
    editor = world.headers["editor_a"]
    made = client.post(
        f"{API}/gateways", json={"site_id": world.ids["a"]["site_id"], "name": "front"}, headers=editor
    )
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert made.json()["command"] == f"beacon-agent enroll --server http://127.0.0.1:8000 --code {code}"
    gateway_id = made.json()["gateway"]["id"]
    assert made.json()["gateway"]["health"] == "pending"

    token = client.post("/gateway/v1/enroll", json={"code": code}).json()["token"]
    agent = {"Authorization": f"Bearer {token}"}
    url = f"{API}/gateways/{gateway_id}"
    assert client.get(url, headers=editor).json()["health"] == "silent"
    assert client.post("/gateway/v1/heartbeat", json=HEARTBEAT, headers=agent).status_code == 204
    shown = client.get(url, headers=editor).json()
    assert (shown["health"], shown["last_heartbeat"]["version"]) == ("ok", "0.1.0")
    clock.advance(600)
    assert client.get(url, headers=editor).json()["health"] == "stale"

    rotated = client.post(f"{url}/rotate", headers=editor).json()
    assert rotated["code"] != code
    assert rotated["command"].endswith(f"--code {rotated['code']}")
    assert client.post(f"{url}/revoke", headers=editor).json()["health"] == "revoked"
    assert client.get("/gateway/v1/config", headers=agent).status_code == 401
    assert client.post("/gateway/v1/enroll", json={"code": rotated["code"]}).status_code == 401
    listed = client.get(
        f"{API}/gateways", params={"site_id": world.ids["a"]["site_id"]}, headers=editor
    ).json()
    assert gateway_id not in [g["id"] for g in listed["items"]]
    everything = client.get(f"{API}/gateways", params={"include_revoked": True}, headers=editor).json()
    assert gateway_id in [g["id"] for g in everything["items"]]


def test_a_scanner_that_keeps_failing_shows_as_scanner_failing_until_it_scans_again(client, session, clock):
    world = make_world(session, clock())
    editor = world.headers["editor_a"]
    made = client.post(
        f"{API}/gateways", json={"site_id": world.ids["a"]["site_id"], "name": "front"}, headers=editor
    )
    token = client.post("/gateway/v1/enroll", json={"code": made.json()["code"]}).json()["token"]
    agent = {"Authorization": f"Bearer {token}"}
    url = f"{API}/gateways/{made.json()['gateway']['id']}"

    def beat(**scanner: object) -> str:
        assert (
            client.post("/gateway/v1/heartbeat", json=HEARTBEAT | scanner, headers=agent).status_code == 204
        )
        return client.get(url, headers=editor).json()["health"]

    assert beat() == "ok", "an agent that sends no scanner state (older) is judged by its heartbeats"
    assert beat(scanner_state="scanning", scanner_failures=0) == "ok"
    # One failed start is retried within a second or two; it is not yet worth an admin's attention.
    assert beat(scanner_state="failing", scanner_failures=1, scanner_error="busy") == "ok"
    failing = {"scanner_state": "failing", "scanner_failures": 7, "scanner_error": "adapter_missing"}
    assert beat(**failing) == "scanner_failing"
    shown = client.get(url, headers=editor).json()["last_heartbeat"]
    assert (shown["scanner_error"], shown["scanner_failures"]) == ("adapter_missing", 7)
    # Restarted after hearing nothing for the watchdog's time: maybe an empty street, not a broken scanner.
    assert beat(scanner_state="failing", scanner_failures=5, scanner_error="silent") == "ok"
    assert beat(**failing) == "scanner_failing"
    clock.advance(600)
    assert client.get(url, headers=editor).json()["health"] == "stale", "no heartbeat at all says more"
    assert beat(scanner_state="scanning", scanner_failures=0, scanner_error="adapter_missing") == "ok"
    refused = client.post(
        "/gateway/v1/heartbeat", json=HEARTBEAT | {"scanner_error": "Adapter gone!"}, headers=agent
    )
    assert refused.status_code == 422


def test_site_beacons_are_validated_and_reach_the_gateway_config(client, session, clock):
    world = make_world(session, clock())
    site_id = world.ids["a"]["site_id"]
    url = f"{API}/sites/{site_id}/beacons"
    bad = client.post(
        url, json={"kind": "ibeacon", "identifier": "not-a-uuid/1/2"}, headers=world.headers["editor_a"]
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "identifier"
    again = {
        "kind": "ibeacon",
        "identifier": "F7826DA6-4FA2-4E98-8024-BC5B71E0893E/1/1",
    }  # the world's, in caps
    assert client.post(url, json=again, headers=world.headers["editor_a"]).status_code == 409
    uid = {"kind": "eddystone_uid", "identifier": "00112233445566778899/aabbccddeeff", "measured_power": -60}
    assert client.post(url, json=uid, headers=world.headers["editor_a"]).status_code == 201
    made = client.post(
        f"{API}/gateways", json={"site_id": site_id, "name": "g"}, headers=world.headers["editor_a"]
    )
    token = client.post("/gateway/v1/enroll", json={"code": made.json()["code"]}).json()["token"]
    config = client.get("/gateway/v1/config", headers={"Authorization": f"Bearer {token}"}).json()
    assert "eddystone_uid:00112233445566778899/aabbccddeeff" in [w["identifier"] for w in config["watched"]]


def test_every_change_is_audited_for_owners_and_the_operator_only(client, session, clock):
    world = make_world(session, clock())
    site_id = world.ids["a"]["site_id"]
    changed = client.patch(
        f"{API}/sites/{site_id}",
        json={"quiet_end": "09:00"},
        headers=world.headers["editor_a"] | {"If-Match": '"v1"'},
    )
    assert changed.status_code == 200
    trail = client.get(
        f"{API}/audit", params={"entity": "site", "entity_id": str(site_id)}, headers=world.headers["owner_a"]
    ).json()["items"]
    assert len(trail) == 1
    entry = trail[0]
    assert (entry["action"], entry["actor"]) == ("site.update", f"user:{world.users['editor_a'].id}")
    assert (entry["before"]["quiet_end"], entry["after"]["quiet_end"]) == ("08:00", "09:00")
    assert entry["at"].startswith(clock().date().isoformat())
    assert client.get(f"{API}/audit", headers=world.headers["editor_a"]).status_code == 403
    org_a = world.ids["a"]["org_id"]
    assert (
        client.get(
            f"{API}/audit", params={"organisation_id": org_a}, headers=world.headers["viewer_a"]
        ).status_code
        == 403
    )
    theirs = client.get(f"{API}/audit", headers=world.headers["owner_b"]).json()["items"]
    assert all(e["organisation_id"] == world.ids["b"]["org_id"] for e in theirs)
    everything = client.get(
        f"{API}/audit", params={"entity": "site"}, headers=world.headers["operator"]
    ).json()
    assert everything["total"] == 1


def test_support_lists_show_pseudonyms_never_subscriber_ids(client, session, clock):
    world = make_world(session, clock())
    subscriber = Subscriber(
        device_token_hash="x" * 64, identity_key_sealed=b"k" * 32, rotation_exponent=10, scopes=["volunteer"]
    )
    session.add(subscriber)
    session.flush()
    session.add(
        PromptDecision(
            subscriber_id=subscriber.id,
            site_id=world.ids["a"]["site_id"],
            outcome="suppressed",
            reason="daily_cap",
            decided_at=clock(),
        )
    )
    session.commit()
    answer = client.get(f"{API}/decisions", params={"reason": "daily_cap"}, headers=world.headers["viewer_a"])
    assert answer.status_code == 200
    [decision] = answer.json()["items"]
    assert decision["person"].startswith("p_")
    assert str(subscriber.id) not in answer.text
    assert subscriber.id.hex not in answer.text
    assert uuid.UUID(int=subscriber.id.int).hex not in answer.text
    deliveries = client.get(f"{API}/deliveries", headers=world.headers["viewer_a"]).json()
    assert deliveries["total"] == 1


def test_an_id_past_what_the_database_holds_is_a_client_error(client, session, clock, engine):
    """PostgreSQL refuses a value its column's type cannot hold (an id past 2^31 - 1): a 422 that says so, not
    a 500; SQLite, whose integers are 64-bit, finds nothing."""
    world = make_world(session, clock())
    session.commit()
    headers = world.headers["editor_a"]
    for path, on_sqlite in ((f"{API}/sites/{2**40}", 404), (f"{API}/sites?organisation_id={2**40}", 200)):
        answer = client.get(path, headers=headers)
        if engine.dialect.name == "postgresql":
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["code"] == "value_out_of_range"
        else:
            assert answer.status_code == on_sqlite, (path, answer.text)
