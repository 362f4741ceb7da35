"""The whole gateway against BlueZ: real bleak backend on dbusmock -> agent -> a real running server.

Phones appear and their RSSI changes on a private D-Bus; the agent decodes, tracks and delivers
enter/dwell/exit to the server, watches the site's own beacon, and lets nothing else out: every byte it
sends and every byte of its outbox are searched for MAC addresses and foreign advertisements.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from beacon_agent.agent import Agent
from beacon_agent.config import AgentSettings
from mobile_api.eid import eid
from server.app import create_app
from server.core.config import Settings
from server.presence.models import ProximityEvent
from server.prompts.models import PromptDecision
from server.sites.models import SiteBeacon
from tests.bluez import MockBlueZ, bluez_fixture, eddystone_eid, ibeacon, wait_until  # noqa: F401
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

pytestmark = [pytest.mark.dbus, pytest.mark.slow]

PHONE_MAC = "5E:11:0A:00:00:01"
FOREIGN_MAC = "7A:22:33:44:55:66"
OTHER_BEACON_MAC = "C4:7B:00:11:22:33"
SITE_BEACON_MAC = "D0:0D:AB:CD:EF:01"
SITE_UUID = uuid.UUID("6a1c0000-0000-4000-8000-00000000beef")
OTHER_UUID = uuid.UUID("f7826da6-4fa2-4e98-8024-bc5b71e0893e")  # a shop next door's beacon
APPLE_CONTINUITY = bytes.fromhex("1005031c0a3b1e9f")
FOREIGN_SERVICE = {"0000fe9f-0000-1000-8000-00805f9b34fb": bytes.fromhex("00112233445566778899aabbccddeeff")}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the real server over loopback and keeps every byte the agent sent."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        head = f"{request.method} {request.url}\n" + "".join(
            f"{k}: {v}\n" for k, v in request.headers.items()
        )
        self.sent.append(head.encode() + body)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _forms_of_mac(mac: str) -> list[bytes]:
    """A MAC address as text in every usual spelling, and as raw bytes in both byte orders."""
    hex_plain = mac.replace(":", "")
    raw = bytes.fromhex(hex_plain)
    texts = {mac, mac.lower(), hex_plain, hex_plain.lower(), mac.replace(":", "-"), mac.replace(":", "_")}
    return [text.encode() for text in texts] + [raw, raw[::-1]]


def _forms_of_bytes(data: bytes) -> list[bytes]:
    return [data, data.hex().encode(), data.hex().upper().encode()]


def _outbox_bytes(state: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(state.glob("outbox.db*")))


def _prompts(session: Session) -> int:
    session.expire_all()
    return len(session.scalars(select(PromptDecision).where(PromptDecision.outcome == "prompted")).all())


def _kinds(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(ProximityEvent.kind).order_by(ProximityEvent.id)))


@pytest.mark.timeout(90)
async def test_phone_over_bluez_reaches_the_server_and_nothing_else_leaves_the_gateway(
    bluez: MockBlueZ, settings: Settings, session: Session, clock: Clock, tmp_path: Path
):
    charity = make_charity(session, clock())
    beacon = SiteBeacon(site_id=charity.site_id, kind="ibeacon", identifier=f"{SITE_UUID}/1/2", label="door")
    session.add(beacon)
    session.commit()
    state = tmp_path / "agent"
    recorder = RecordingTransport()
    with LiveServer(create_app(settings, clock=clock)) as server:
        async with httpx.AsyncClient(base_url=server.url) as phone_side:
            enrolled = await phone_side.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})
            consent = {"consent_text_version": "2026-11", "scopes": ["volunteer"], "language": "de"}
            phone = (await phone_side.post("/mobile/v1/optin", json=consent)).json()
        identity_key, k = bytes.fromhex(phone["identity_key"]), phone["rotation_exponent"]
        phone_eid = eid(identity_key, int(clock().timestamp()), k)

        async with httpx.AsyncClient(base_url=server.url, transport=recorder) as client:
            agent = Agent(
                AgentSettings(server_url=server.url, state_dir=state, watchdog_seconds=60),
                client,
                enrolled.json()["token"],
                wall_clock=lambda: clock().timestamp(),
                tick_s=0.05,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            await wait_until(bluez.scanning, 15, "the agent's scanner to start")
            await wait_until(
                lambda: bool(agent.tracker.watched), 10, "the gateway config with the site beacon"
            )

            phone_path = bluez.add_device(PHONE_MAC, -60, service_data=eddystone_eid(phone_eid))
            bluez.add_device(FOREIGN_MAC, -50, manufacturer_data={0x004C: APPLE_CONTINUITY})
            bluez.add_device(FOREIGN_MAC.replace("7A", "7B"), -52, service_data=FOREIGN_SERVICE)
            bluez.add_device(OTHER_BEACON_MAC, -55, manufacturer_data=ibeacon(OTHER_UUID, 7, 8))
            bluez.add_device(SITE_BEACON_MAC, -70, manufacturer_data=ibeacon(SITE_UUID, 1, 2))
            for rssi in (-61, -59):  # one reading is no presence: the third enters
                await asyncio.sleep(0.1)
                bluez.set_rssi(phone_path, rssi)
            await wait_until(lambda: _kinds(session) == ["enter"], 15, "the enter event at the server")
            assert _prompts(session) == 0, "15 s of dwell before this campaign asks"

            clock.advance(15)
            bluez.set_rssi(phone_path, -58)  # still here at the campaign's minimum dwell: the mark
            await wait_until(lambda: _kinds(session) == ["enter", "dwell"], 15, "the dwell at the 15 s mark")
            assert _prompts(session) == 1, "the prompt is decided at the mark, not at a 30 s cadence"
            while_running = _outbox_bytes(state)

            clock.advance(25)  # silent for longer than exit_after_s: gone
            await wait_until(lambda: _kinds(session) == ["enter", "dwell", "exit"], 15, "the exit event")

            heartbeat = agent.heartbeat()
            await agent.control.send_heartbeat(heartbeat)
            stop.set()
            await asyncio.wait_for(running, 15)

    session.expire_all()
    dwell = session.scalars(select(ProximityEvent.dwell_s).order_by(ProximityEvent.id)).all()
    assert dwell == [0.0, 15.0, 15.0], "dwell counts from enter to the last sighting"
    assert agent.tracker.stats.kept >= 3, "the phone's adverts and the site beacon's were kept"
    assert agent.tracker.stats.dropped >= 3, "the foreign adverts were heard, and dropped"
    assert [b[0] for b in heartbeat.beacons] == [f"ibeacon:{SITE_UUID}/1/2"]
    session.refresh(beacon)
    assert beacon.last_seen_at is not None, "the heartbeat told the server the site's beacon is alive"

    sent = b"\n".join(recorder.sent)
    assert phone_eid.hex().encode() in sent, "the recorder must see what the agent really sent"
    for blob, where in (
        (sent, "sent to the server"),
        (while_running + _outbox_bytes(state), "in the outbox"),
    ):
        for mac in (PHONE_MAC, FOREIGN_MAC, OTHER_BEACON_MAC, SITE_BEACON_MAC):
            for form in _forms_of_mac(mac):
                assert form not in blob, f"MAC address {mac} ({form!r}) {where}"
        foreign = [
            APPLE_CONTINUITY,
            *FOREIGN_SERVICE.values(),
            OTHER_UUID.bytes,
            *ibeacon(OTHER_UUID, 7, 8).values(),
        ]
        for data in foreign:
            for form in _forms_of_bytes(data):
                assert form not in blob, f"foreign advertisement data {form!r} {where}"
        assert str(OTHER_UUID).encode() not in blob, f"the neighbour's beacon {where}"
