"""The soak benchmark's gateway: beacon_agent's `Agent` (tracker, outbox, uplink, config pull, heartbeat) fed
by a simulated street instead of BlueZ, in a process of its own so that its memory is measured alone.

`python -m bench.soak_agent SERVER_URL STATE_DIR KEYS_FILE` (the gateway token in STATE_DIR/token, the
opted-in phones' identity keys in KEYS_FILE, one hex key a line). People arrive all the time and walk past
(bench/street.py's walks and path loss): most carry an opted-in phone, the rest a phone with a key the
server never saw; every present phone advertises its current Eddystone-EID five times a second, and the
window hears foreign devices that come and go with ever new payloads (the churn of randomised addresses
and their rotating data), which the agent must drop. Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from pathlib import Path
from typing import Final

import httpx

from beacon_agent.agent import Agent
from beacon_agent.config import AgentSettings
from beacon_agent.frames import EDDYSTONE_SERVICE_UUID
from bench.street import TX_POWER_0M, Walk, mean_rssi
from mobile_api.eid import eid

TICK_S: Final = 0.2  # each present phone advertises once a tick (5 Hz)
ARRIVALS_PER_S: Final = 0.5  # people arriving at the window
STRANGER_SHARE: Final = 0.3  # phones whose keys the server does not know
STOPPER_SHARE: Final = 0.2  # people who stop at the door for 18-28 s
FOREIGN_PER_TICK: Final = 20  # other devices' advertisements a tick, each from a device seldom heard twice
K: Final = 10


class Street:
    """The agent's advertisement source: phones walking past, and foreign chatter."""

    def __init__(self, agent: Agent, keys: list[bytes], seed: int) -> None:
        self.agent = agent
        self.keys = keys
        self.rng = random.Random(seed)
        self.walking: list[tuple[bytes, Walk]] = []

    async def run(self, stop: asyncio.Event) -> None:
        opened = time.time()
        loop = asyncio.get_running_loop()
        next_arrival = 0.0
        while not stop.is_set():
            now = time.time()
            t = now - opened
            while next_arrival <= t:
                self.walking.append(self._arrive(next_arrival))
                next_arrival += self.rng.expovariate(ARRIVALS_PER_S)
            still = []
            for key, walk in self.walking:
                distance = walk.distance(t)
                if distance is None:
                    if t < walk.start:
                        still.append((key, walk))
                    continue
                still.append((key, walk))
                rssi = round(mean_rssi(distance) + self.rng.gauss(0.0, 3.0))
                frame = bytes([0x30, TX_POWER_0M & 0xFF]) + eid(key, int(now), K)
                self.agent.on_advertisement({}, {EDDYSTONE_SERVICE_UUID: frame}, rssi, loop.time())
            self.walking = still
            for _ in range(FOREIGN_PER_TICK):
                self.agent.on_advertisement(*self._foreign(), self.rng.randint(-98, -55), loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)

    def _arrive(self, at: float) -> tuple[bytes, Walk]:
        stranger = self.rng.random() < STRANGER_SHARE or not self.keys
        key = self.rng.randbytes(16) if stranger else self.rng.choice(self.keys)
        stopper = self.rng.random() < STOPPER_SHARE
        walk = Walk("stopper" if stopper else "walker", at, self.rng.uniform(18.0, 28.0) if stopper else 0.0)
        return key, walk

    def _foreign(self) -> tuple[dict[int, bytes], dict[str, bytes]]:
        kind = self.rng.random()
        if kind < 0.6:  # Apple Continuity with rotating data
            return {0x004C: bytes([0x10, 0x05]) + self.rng.randbytes(5)}, {}
        if kind < 0.85:  # some other company's manufacturer data
            return {self.rng.randrange(0x0001, 0x0FFF): self.rng.randbytes(self.rng.randint(4, 20))}, {}
        return {}, {"0000fe9f-0000-1000-8000-00805f9b34fb": self.rng.randbytes(20)}  # Fast Pair style


async def _main(server_url: str, state_dir: Path, keys: list[bytes]) -> None:
    settings = AgentSettings(server_url=server_url, state_dir=state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with httpx.AsyncClient(base_url=server_url, timeout=10) as client:
        agent = Agent(
            settings,
            client,
            settings.token_file.read_text().strip(),
            source=lambda a: Street(a, keys, seed=5),
        )
        await agent.run(stop)


def main(argv: list[str]) -> int:
    server_url, state_dir, keys_file = argv
    keys = [bytes.fromhex(line) for line in Path(keys_file).read_text().split()]
    asyncio.run(_main(server_url, Path(state_dir), keys))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
