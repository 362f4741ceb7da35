"""A simulated street: phones walk past the demo sites, the gateways hear them, the phones read prompts.

Only the radio is simulated. Each site runs the real gateway agent (decode -> tracker -> outbox -> uplink,
config pull and heartbeat) against the running server over HTTP; phones opt in and read their inbox over
HTTP too. The radio also hears foreign advertisements (Apple Continuity, a fitness band), which the agent
must drop, as it would in a real shop window.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from beacon_agent.agent import Agent
from beacon_agent.config import AgentSettings
from beacon_agent.frames import EDDYSTONE_SERVICE_UUID
from mobile_api.eid import eid
from server.demo.seed import DemoSite

CONSENT_VERSION: Final = "2026-11"
PHONE_TX_POWER: Final = -18  # Eddystone's "RSSI at 0 m", i.e. about -59 dBm at 1 m
OUT_OF_RANGE: Final = -110.0
# Foreign advertisements a window hears all day; the agent keeps nothing of them.
_FOREIGN: Final[tuple[tuple[dict[int, bytes], dict[str, bytes]], ...]] = (
    ({0x004C: bytes.fromhex("1005031c0a3b1e")}, {}),  # Apple Continuity "nearby info"
    ({0x0157: bytes.fromhex("0102030405060708")}, {}),  # a fitness band
    ({}, {"0000fe9f-0000-1000-8000-00805f9b34fb": bytes(20)}),  # Google Fast Pair style service data
)


@dataclass(slots=True)
class Phone:
    number: int
    token: str
    identity_key: bytes
    k: int
    rssi: dict[int, float] = field(default_factory=dict)  # site id -> what that site's gateway hears
    seen_prompts: set[int] = field(default_factory=set)

    def service_data(self, at: float) -> dict[str, bytes]:
        """The Eddystone-EID frame this phone advertises at Unix time `at`."""
        frame = bytes([0x30, PHONE_TX_POWER & 0xFF]) + eid(self.identity_key, int(at), self.k)
        return {EDDYSTONE_SERVICE_UUID: frame}


@dataclass(slots=True)
class Radio:
    """What one gateway's antenna hears each second: nearby phones (with noise) and foreign chatter."""

    agent: Agent
    site_id: int
    phones: list[Phone]
    rng: random.Random

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            now = loop.time()
            for phone in self.phones:
                rssi = phone.rssi.get(self.site_id, OUT_OF_RANGE)
                if rssi > OUT_OF_RANGE:
                    noisy = int(rssi + self.rng.gauss(0, 3))
                    self.agent.on_advertisement({}, phone.service_data(self.agent.wall_clock()), noisy, now)
            for manufacturer_data, service_data in self.rng.sample(_FOREIGN, 2):
                self.agent.on_advertisement(manufacturer_data, service_data, self.rng.randint(-95, -60), now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _opt_in(client: httpx.AsyncClient, number: int, rng: random.Random) -> Phone:
    scopes = rng.choice([["volunteer"], ["donation"], ["volunteer", "donation"]])
    body = {
        "consent_text_version": CONSENT_VERSION,
        "scopes": scopes,
        "language": rng.choice(["de", "de", "en"]),
    }
    answer = (await client.post("/mobile/v1/optin", json=body)).raise_for_status().json()
    return Phone(
        number, answer["device_token"], bytes.fromhex(answer["identity_key"]), answer["rotation_exponent"]
    )


async def _enrol(client: httpx.AsyncClient, site: DemoSite, base_url: str, state: Path) -> AgentSettings:
    answer = (
        (await client.post("/gateway/v1/enroll", json={"code": site.enrolment_code}))
        .raise_for_status()
        .json()
    )
    settings = AgentSettings(server_url=base_url, state_dir=state / f"gateway-{site.site_id}")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings.token_file.write_text(answer["token"])
    return settings


async def _walk(phone: Phone, site_ids: list[int], rng: random.Random) -> None:
    """Walk past one site after another: approach, linger a little, walk on."""
    await asyncio.sleep(rng.uniform(0, 8))
    for site_id in itertools.cycle(rng.sample(site_ids, len(site_ids))):
        for step in range(8):  # approaching: from barely audible to a couple of metres
            phone.rssi[site_id] = -100 + step * 5
            await asyncio.sleep(1)
        await asyncio.sleep(rng.uniform(15, 45))
        for step in range(8):
            phone.rssi[site_id] = -65 - step * 5
            await asyncio.sleep(1)
        phone.rssi[site_id] = OUT_OF_RANGE
        await asyncio.sleep(rng.uniform(10, 40))


async def _read_inbox(client: httpx.AsyncClient, phone: Phone, say: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(3)
        headers = {"Authorization": f"Bearer {phone.token}"}
        try:
            answer = await client.get("/mobile/v1/me/prompts", headers=headers)
        except httpx.TransportError:
            continue  # the server is restarting or shutting down: a phone just tries again later
        prompts = answer.raise_for_status().json()["prompts"]
        for prompt in prompts:
            if prompt["id"] not in phone.seen_prompts:
                phone.seen_prompts.add(prompt["id"])
                say(
                    f"phone {phone.number:02d} got a prompt from {prompt['organisation']} "
                    f"({prompt['campaign_kind']}, {prompt['language']}): {prompt['title']}"
                )


async def run_street(base_url: str, sites: list[DemoSite], phones: int, say: Callable[[str], None]) -> None:
    """Run until cancelled; the gateways' outboxes live in a temporary directory for the demo's lifetime."""
    rng = random.Random()
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="nahbar-demo-gateways-") as state:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            walkers = [await _opt_in(client, n + 1, rng) for n in range(phones)]
            agents: list[Agent] = []
            for site in sites:
                settings = await _enrol(client, site, base_url, Path(state))
                site_id = site.site_id
                agents.append(
                    Agent(
                        settings,
                        client,
                        settings.token_file.read_text(),
                        source=lambda agent, s=site_id: Radio(agent, s, walkers, rng),  # type: ignore[misc]
                    )
                )
            say(f"{len(walkers)} phones opted in; {len(agents)} gateways enrolled; walking...")
            try:
                async with asyncio.TaskGroup() as group:
                    for agent in agents:
                        group.create_task(agent.run(stop))
                    for phone in walkers:
                        group.create_task(_walk(phone, [site.site_id for site in sites], rng))
                        group.create_task(_read_inbox(client, phone, say))
            finally:
                stop.set()
