"""A simulated street: opted-in phones walk past the demo sites; their gateways report; phones read prompts.

Everything goes over real HTTP to the running server: opt-in, enrolment, event batches and inbox polls.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from mobile_api.eid import eid
from server.demo.seed import DemoSite

CONSENT_VERSION = "2026-11"


@dataclass(slots=True)
class Phone:
    number: int
    token: str
    identity_key: bytes
    k: int
    seen_prompts: set[int] = field(default_factory=set)

    def broadcast(self, at: float) -> str:
        return eid(self.identity_key, int(at), self.k).hex()


@dataclass(slots=True)
class Gateway:
    site: DemoSite
    token: str
    pending: list[dict[str, object]] = field(default_factory=list)


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


async def _enrol(client: httpx.AsyncClient, site: DemoSite) -> Gateway:
    answer = (
        (await client.post("/gateway/v1/enroll", json={"code": site.enrolment_code}))
        .raise_for_status()
        .json()
    )
    return Gateway(site, answer["token"])


def _event(phone: Phone, kind: str, dwell: float) -> dict[str, object]:
    now = time.time()
    return {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "eid": phone.broadcast(now),
        "observed_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "rssi": -60.0,
        "distance_m": 2.0,
        "dwell_s": round(dwell, 1),
    }


async def _walk(phone: Phone, gateways: list[Gateway], rng: random.Random) -> None:
    """Walk past one site after another, lingering a little at each."""
    await asyncio.sleep(rng.uniform(0, 8))
    for gateway in itertools.cycle(rng.sample(gateways, len(gateways))):
        stay = rng.uniform(15, 45)
        gateway.pending.append(_event(phone, "enter", 0))
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < stay:
            await asyncio.sleep(min(10, stay - elapsed))
            kind = "dwell" if time.monotonic() - started < stay else "exit"
            gateway.pending.append(_event(phone, kind, time.monotonic() - started))
        await asyncio.sleep(rng.uniform(10, 40))


async def _uplink(client: httpx.AsyncClient, gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(1)
        batch, gateway.pending = gateway.pending, []
        if batch:
            headers = {"Authorization": f"Bearer {gateway.token}"}
            (
                await client.post("/gateway/v1/events", json={"events": batch}, headers=headers)
            ).raise_for_status()


async def _read_inbox(client: httpx.AsyncClient, phone: Phone, say: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(3)
        headers = {"Authorization": f"Bearer {phone.token}"}
        prompts = (
            (await client.get("/mobile/v1/me/prompts", headers=headers)).raise_for_status().json()["prompts"]
        )
        for prompt in prompts:
            if prompt["id"] not in phone.seen_prompts:
                phone.seen_prompts.add(prompt["id"])
                say(
                    f"phone {phone.number:02d} got a prompt from {prompt['organisation']} "
                    f"({prompt['campaign_kind']}, {prompt['language']}): {prompt['title']}"
                )


async def run_street(base_url: str, sites: list[DemoSite], phones: int, say: Callable[[str], None]) -> None:
    """Run until cancelled."""
    rng = random.Random()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        gateways = [await _enrol(client, site) for site in sites]
        walkers = [await _opt_in(client, n + 1, rng) for n in range(phones)]
        say(f"{len(walkers)} phones opted in; {len(gateways)} gateways enrolled; walking...")
        async with asyncio.TaskGroup() as group:
            for gateway in gateways:
                group.create_task(_uplink(client, gateway))
            for phone in walkers:
                group.create_task(_walk(phone, gateways, rng))
                group.create_task(_read_inbox(client, phone, say))
