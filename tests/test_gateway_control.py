"""The control channel over real HTTP on SQLite and PostgreSQL: the agent's Control against the real app."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from beacon_agent.control import BeaconSeen, Control, ControlError, GatewayConfig, Heartbeat
from beacon_agent.frames import EDDYSTONE_SERVICE_UUID, decode, identifier
from beacon_agent.tracker import Tracker, TrackerConfig
from server.campaigns.models import Campaign
from server.sites.models import Gateway, SiteBeacon
from server.sites.schemas import MAX_HEARTBEAT_BYTES, TrackerSettings
from server.sites.service import watched_identifier
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

IBEACON_UUID = uuid.UUID("f7826da6-4fa2-4e98-8024-bc5b71e0893e")
NAMESPACE = bytes.fromhex("edd1ebeac04e5defa017")
INSTANCE = bytes.fromhex("0badc0ffee01")
ALT_ID = bytes(range(16))

# What a beacon at the door puts in the air, as bleak hands it over.
Advertisement = tuple[dict[int, bytes], dict[str, bytes]]
IBEACON_AD: Advertisement = ({0x004C: b"\x02\x15" + IBEACON_UUID.bytes + b"\x00\x01\x00\x2a" + b"\xc5"}, {})
UID_AD: Advertisement = ({}, {EDDYSTONE_SERVICE_UUID: b"\x00\xee" + NAMESPACE + INSTANCE + b"\x00\x00"})
ALT_AD: Advertisement = ({0x0118: b"\xbe\xac" + ALT_ID + b"\x00\x07\x00\x08" + b"\xc3\x00"}, {})


def key_of(advertisement: Advertisement) -> str:
    frame = decode(*advertisement)
    assert frame is not None
    key = identifier(frame)
    assert key is not None
    return key


def add_beacon(session: Session, site_id: int, kind: str, typed: str, power: int | None = -59) -> SiteBeacon:
    beacon = SiteBeacon(site_id=site_id, kind=kind, identifier=typed, measured_power=power)
    session.add(beacon)
    session.commit()
    return beacon


def heartbeat(**changes: object) -> Heartbeat:
    values: dict[str, object] = {
        "adverts_seen_per_s": 412.5,
        "adverts_kept_per_s": 30.25,
        "adverts_dropped_per_s": 382.25,
        "outbox_depth": 17,
        "outbox_dropped_full": 0,
        "outbox_set_aside": 2,
        "scanner_restarts": 1,
        "scanner_power_cycles": 0,
        "scanner_mode": "passive",
        "uptime_s": 3600.0,
        "version": "0.1.0",
    }
    return Heartbeat(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        yield client


async def enrol(http: httpx.AsyncClient, code: str) -> str:
    answer = await http.post("/gateway/v1/enroll", json={"code": code})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def gateway_row(session: Session, site_id: int) -> Gateway:
    session.expire_all()
    gateway = session.scalar(select(Gateway).where(Gateway.site_id == site_id))
    assert gateway is not None
    return gateway


def test_the_servers_defaults_are_the_agents():
    assert TrackerSettings().model_dump() == asdict(TrackerConfig())


@pytest.mark.parametrize(
    ("kind", "typed", "advertisement"),
    [
        ("ibeacon", f"{IBEACON_UUID}/1/42", IBEACON_AD),
        ("iBeacon", f" {IBEACON_UUID.hex.upper()}/01/042 ", IBEACON_AD),
        ("ibeacon", f"ibeacon:{{{IBEACON_UUID}}}/1/42", IBEACON_AD),
        ("altbeacon", f"{ALT_ID.hex()}/7/8", ALT_AD),
        ("altbeacon", f"{uuid.UUID(bytes=ALT_ID)}/7/8".upper(), ALT_AD),
        ("eddystone_uid", f"{NAMESPACE.hex()}/{INSTANCE.hex()}", UID_AD),
        ("eddystone_uid", f"EDDYSTONE_UID:{NAMESPACE.hex().upper()}/{INSTANCE.hex().upper()}", UID_AD),
    ],
)
def test_typed_identifiers_render_as_the_agent_keys_frames(kind, typed, advertisement):
    assert watched_identifier(kind, typed) == key_of(advertisement)


@pytest.mark.parametrize(
    ("kind", "typed"),
    [
        ("ibeacon", "not-a-uuid/1/2"),
        ("ibeacon", f"{IBEACON_UUID}/65536/1"),
        ("ibeacon", f"{IBEACON_UUID}/-1/1"),
        ("ibeacon", f"{IBEACON_UUID}/1"),
        ("altbeacon", f"{ALT_ID.hex()[:-2]}/7/8"),
        ("eddystone_uid", f"{NAMESPACE.hex()}/{INSTANCE.hex()[:-1]}z"),
        ("eddystone_uid", f"{NAMESPACE.hex()[:-2]} a/{INSTANCE.hex()}"),
        ("eddystone_eid", "0123456789abcdef"),
    ],
)
def test_malformed_beacon_rows_render_as_nothing(kind, typed):
    assert watched_identifier(kind, typed) is None


async def test_config_names_the_site_beacons_as_the_agent_keys_them_and_the_etag_round_trips(
    http, session, clock: Clock
):
    charity = make_charity(session, clock())
    # Typed the way admins type: any case, with or without dashes or the kind prefix.
    add_beacon(session, charity.site_id, "ibeacon", f"{str(IBEACON_UUID).upper()}/1/42", power=-61)
    add_beacon(
        session, charity.site_id, "eddystone_uid", f"eddystone_uid:{NAMESPACE.hex().upper()}/0BADC0FFEE01"
    )
    add_beacon(session, charity.site_id, "altbeacon", f"{uuid.UUID(bytes=ALT_ID)}/7/8", power=None)
    add_beacon(session, charity.site_id, "ibeacon", "not-a-uuid/1/2")  # skipped, never sent
    other = make_charity(session, clock(), slug="tafel")
    add_beacon(session, other.site_id, "ibeacon", f"{IBEACON_UUID}/9/9")  # another charity's
    control = Control(http, await enrol(http, charity.enrolment_code))

    config = await control.fetch_config()

    assert isinstance(config, GatewayConfig)
    assert config.tracker == TrackerConfig()
    assert config.heartbeat_s == 60.0
    assert config.watched == {key_of(IBEACON_AD), key_of(UID_AD), key_of(ALT_AD)}
    assert config.etag.startswith('"')  # strong: no W/ prefix
    assert control.etag == config.etag
    assert await control.fetch_config() is None  # 304: unchanged

    # Applied as the agent applies it, the config makes the tracker keep exactly the site's own beacons.
    tracker = Tracker(config.tracker, config.watched)
    for advertisement in (IBEACON_AD, UID_AD, ALT_AD):
        tracker.observe(decode(*advertisement), -70.0, 1000.0)
    foreign: Advertisement = ({0x004C: b"\x02\x15" + uuid.uuid4().bytes + b"\x00\x09\x00\x09\xc5"}, {})
    tracker.observe(decode(*foreign), -70.0, 1000.0)
    assert set(tracker.beacons) == config.watched
    assert (tracker.stats.kept, tracker.stats.dropped) == (3, 1)


async def test_if_none_match_is_answered_304_without_a_body(http, session, clock: Clock):
    charity = make_charity(session, clock())
    auth = {"Authorization": f"Bearer {await enrol(http, charity.enrolment_code)}"}
    first = await http.get("/gateway/v1/config", headers=auth)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    defaults = asdict(TrackerConfig()) | {"dwell_marks": [15.0, 1200.0]}  # the campaign's: the defaults
    assert first.json() == {"tracker": defaults, "watched": [], "heartbeat_s": 60.0}

    for if_none_match in (etag, f'"stale", {etag}', f"W/{etag}", "*"):
        again = await http.get("/gateway/v1/config", headers=auth | {"If-None-Match": if_none_match})
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["ETag"] == etag
    stale = await http.get("/gateway/v1/config", headers=auth | {"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()


async def test_a_campaigns_minimum_dwell_reaches_its_sites_gateways_as_a_mark(http, session, clock: Clock):
    charity = make_charity(session, clock())
    control = Control(http, await enrol(http, charity.enrolment_code))
    first = await control.fetch_config()
    assert first is not None
    assert first.tracker.dwell_marks == (15.0, 1200.0)  # the default minimum dwell and the staff limit
    assert first.tracker.rotation_s == 1024.0

    campaign = session.get_one(Campaign, charity.campaign_id)
    campaign.min_dwell_s, campaign.max_dwell_s = 40, 600
    session.commit()
    changed = await control.fetch_config()
    assert changed is not None
    assert changed.etag != first.etag
    assert changed.tracker.dwell_marks == (40.0, 600.0)

    campaign.status = "paused"  # a paused campaign asks for no marks
    session.commit()
    paused = await control.fetch_config()
    assert paused is not None
    assert paused.tracker.dwell_marks == ()
    assert await control.fetch_config() is None, "unchanged: 304"


async def test_a_change_on_the_server_gives_a_new_config_and_etag(http, session, clock: Clock):
    charity = make_charity(session, clock())
    control = Control(http, await enrol(http, charity.enrolment_code))
    first = await control.fetch_config()
    assert first is not None

    gateway = gateway_row(session, charity.site_id)
    gateway.config = {"tracker": {"enter_rssi": -80.0, "dwell_every_s": 60}, "heartbeat_s": 120}
    session.commit()
    tuned = await control.fetch_config()
    assert tuned is not None
    assert tuned.etag != first.etag
    assert (tuned.tracker.enter_rssi, tuned.tracker.dwell_every_s, tuned.heartbeat_s) == (-80.0, 60.0, 120.0)
    assert tuned.tracker.exit_rssi == TrackerConfig().exit_rssi
    assert await control.fetch_config() is None

    add_beacon(session, charity.site_id, "eddystone_uid", f"{NAMESPACE.hex()}/{INSTANCE.hex()}")
    watching = await control.fetch_config()
    assert watching is not None
    assert watching.etag not in (first.etag, tuned.etag)
    assert watching.watched == {key_of(UID_AD)}
    assert watching.tracker == tuned.tracker
    assert await control.fetch_config() is None


async def test_bad_overrides_are_dropped_and_the_good_ones_kept(http, session, clock: Clock):
    charity = make_charity(session, clock())
    control = Control(http, await enrol(http, charity.enrolment_code))
    gateway = gateway_row(session, charity.site_id)
    gateway.config = {"tracker": {"enter_rssi": "loud", "bogus": 1, "exit_rssi": -95.0, "max_tracked": 512}}
    session.commit()

    config = await control.fetch_config()

    assert config is not None
    assert config.tracker == TrackerConfig(exit_rssi=-95.0, max_tracked=512)
    assert isinstance(config.tracker.max_tracked, int)

    # Overrides that would break the hysteresis (exit above enter) fall back to the defaults.
    gateway.config = {"tracker": {"enter_rssi": -95.0, "exit_rssi": -80.0}}
    session.commit()
    config = await control.fetch_config()
    assert config is not None
    assert config.tracker == TrackerConfig()


async def test_a_heartbeat_is_stored_and_moves_only_its_own_sites_beacons(http, session, clock: Clock):
    hospice = make_charity(session, clock())
    foodbank = make_charity(session, clock(), slug="tafel")
    ours = add_beacon(session, hospice.site_id, "ibeacon", f"{IBEACON_UUID}/1/42")
    theirs = add_beacon(session, foodbank.site_id, "ibeacon", f"{IBEACON_UUID}/1/42")  # same identifier
    uid = add_beacon(session, hospice.site_id, "eddystone_uid", f"{NAMESPACE.hex()}/{INSTANCE.hex()}")
    control = Control(http, await enrol(http, hospice.enrolment_code))
    await enrol(http, foodbank.enrolment_code)
    sightings = [(key_of(IBEACON_AD), -71.0, 5.0), BeaconSeen(key_of(UID_AD), -80.5, 12.5, 2900)]

    await control.send_heartbeat(heartbeat(beacons=sightings))

    gateway = gateway_row(session, hospice.site_id)
    assert gateway.last_seen_at == clock()
    stored = gateway.last_heartbeat
    assert stored is not None
    assert stored["outbox_depth"] == 17
    assert stored["scanner_mode"] == "passive"
    assert stored["adverts_seen_per_s"] == 412.5
    assert stored["received_at"] == clock().isoformat()
    assert [b["identifier"] for b in stored["beacons"]] == [key_of(IBEACON_AD), key_of(UID_AD)]
    beacons = {b.id: b for b in session.scalars(select(SiteBeacon))}
    assert beacons[ours.id].last_seen_at == clock() - timedelta(seconds=5)
    assert beacons[uid.id].last_seen_at == clock() - timedelta(seconds=12.5)
    assert beacons[uid.id].battery_mv == 2900
    assert beacons[theirs.id].last_seen_at is None
    assert gateway_row(session, foodbank.site_id).last_heartbeat is None

    # A later heartbeat reporting an older sighting does not move the beacon back in time.
    clock.advance(60)
    await control.send_heartbeat(heartbeat(beacons=[(key_of(IBEACON_AD), -71.0, 600.0)]))
    session.expire_all()
    assert session.get(SiteBeacon, ours.id).last_seen_at == clock() - timedelta(seconds=65)
    gateway = gateway_row(session, hospice.site_id)
    assert gateway.last_seen_at == clock()
    assert gateway.last_heartbeat is not None
    assert gateway.last_heartbeat["beacons"][0]["seen_s_ago"] == 600.0


async def test_unknown_or_revoked_tokens_are_401_problem_json(http, session, clock: Clock):
    charity = make_charity(session, clock())
    token = await enrol(http, charity.enrolment_code)
    stranger = Control(http, "ngw_nonsense")
    for attempt in (stranger.fetch_config(), stranger.send_heartbeat(heartbeat())):
        with pytest.raises(ControlError, match="re-enrol this gateway") as refused:
            await attempt
        assert refused.value.status == 401
        assert refused.value.token_refused

    gateway = gateway_row(session, charity.site_id)
    gateway.revoked_at = clock()
    session.commit()
    for method, path, body in (("GET", "/gateway/v1/config", None), ("POST", "/gateway/v1/heartbeat", {})):
        answer = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unauthorized"
        assert (await http.request(method, path, json=body)).status_code == 401
    assert gateway_row(session, charity.site_id).last_heartbeat is None


async def test_a_malformed_heartbeat_is_422_naming_the_field(http, session, clock: Clock):
    charity = make_charity(session, clock())
    token = await enrol(http, charity.enrolment_code)
    body = heartbeat().to_wire() | {
        "outbox_depth": -1,
        "beacons": [{"identifier": key_of(IBEACON_AD), "rssi": "strong", "seen_s_ago": 1.0}],
    }
    answer = await http.post("/gateway/v1/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert {e["field"] for e in problem["errors"]} == {"outbox_depth", "beacons[0].rssi"}
    assert "outbox_depth" in problem["detail"]

    with pytest.raises(ControlError, match=r"scanner_mode") as refused:
        await Control(http, token).send_heartbeat(heartbeat(scanner_mode="Not A Mode!"))
    assert refused.value.status == 422
    assert gateway_row(session, charity.site_id).last_heartbeat is None


async def test_an_oversize_heartbeat_is_refused_before_it_is_read(http, session, clock: Clock):
    charity = make_charity(session, clock())
    auth = {"Authorization": f"Bearer {await enrol(http, charity.enrolment_code)}"}
    too_many = heartbeat().to_wire() | {
        "beacons": [{"identifier": key_of(IBEACON_AD), "rssi": -70.0, "seen_s_ago": 1.0}] * 101
    }
    answer = await http.post("/gateway/v1/heartbeat", json=too_many, headers=auth)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"beacons"}

    padded = json.dumps(heartbeat().to_wire()).encode() + b" " * MAX_HEARTBEAT_BYTES
    answer = await http.post(
        "/gateway/v1/heartbeat", content=padded, headers=auth | {"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "payload_too_large"
    assert "Heartbeats are limited" in answer.json()["detail"]

    huge = b'{"version": "' + b"x" * 2_000_000 + b'"}'
    answer = await http.post("/gateway/v1/heartbeat", content=huge, headers=auth)
    assert answer.status_code == 413
    assert gateway_row(session, charity.site_id).last_heartbeat is None

    # The agent's own heartbeat stays within the limits however many beacons its tracker holds.
    many = [(f"eddystone_uid:{n:020x}/{n:012x}", -70.0, float(n)) for n in range(300)]
    await Control(http, auth["Authorization"].removeprefix("Bearer ")).send_heartbeat(heartbeat(beacons=many))
    stored = gateway_row(session, charity.site_id).last_heartbeat
    assert stored is not None
    assert [b["seen_s_ago"] for b in stored["beacons"]] == [float(n) for n in range(100)]


async def test_no_server_or_not_our_server_is_a_control_error():
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as nowhere:
        with pytest.raises(ControlError, match="cannot reach the server") as unreachable:
            await Control(nowhere, "ngw_x").fetch_config()
        assert unreachable.value.status is None

    def portal(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, html="<html>Please accept our terms</html>")

    async with httpx.AsyncClient(base_url="http://portal.test", transport=httpx.MockTransport(portal)) as c:
        control = Control(c, "ngw_x")
        with pytest.raises(ControlError, match="not a gateway config"):
            await control.fetch_config()
        assert control.etag is None
