"""The agent never loses an event and never duplicates one: a server that goes away, and `kill -9`.

Both tests run the production pipeline (tracker -> outbox -> uplink) against a real server on a loopback
port with a real database; the second runs the real `beacon-agent run` process and kills it mid-flush.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from beacon_agent.agent import Agent
from beacon_agent.config import AgentSettings
from beacon_agent.enrol import write_secret
from beacon_agent.frames import EDDYSTONE_SERVICE_UUID
from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox
from mobile_api.eid import eid
from server.app import create_app
from server.core.config import Settings
from server.presence.models import ProximityEvent
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

CONSENT = {"consent_text_version": "2026-11", "scopes": ["volunteer", "donation"], "language": "de"}


class QuietRadio:
    """The antenna: silent on its own; the test hands the agent advertisements itself."""

    def __init__(self, _agent: Agent) -> None:
        pass

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


def _stored_keys(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(ProximityEvent.idempotency_key)))


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {seconds} s: {what}")
        await asyncio.sleep(0.02)


def _frame(identity_key: bytes, k: int, at: float) -> dict[str, bytes]:
    return {EDDYSTONE_SERVICE_UUID: bytes([0x30, 0xEE]) + eid(identity_key, int(at), k)}


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_server_down_then_up_loses_nothing_and_duplicates_nothing(
    settings: Settings, session: Session, clock: Clock, tmp_path: Path
):
    charity = make_charity(session, clock())
    first = LiveServer(create_app(settings, clock=clock)).__enter__()
    port, url = first.port, first.url
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        token = (await client.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})).json()[
            "token"
        ]
        phones = [(await client.post("/mobile/v1/optin", json=CONSENT)).json() for _ in range(3)]
        keys = [(bytes.fromhex(p["identity_key"]), p["rotation_exponent"]) for p in phones]
        agent = Agent(
            AgentSettings(server_url=url, state_dir=tmp_path / "agent"),
            client,
            token,
            source=QuietRadio,
            wall_clock=lambda: clock().timestamp(),
            tick_s=0.05,
            backoff_jitter=lambda ceiling: min(ceiling, 0.2),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop))

        def walk(phone: int, seconds: int) -> None:
            for _ in range(seconds):
                now = clock().timestamp()
                agent.on_advertisement({}, _frame(*keys[phone], now), -60, time.monotonic())
                clock.advance(1)

        walk(0, 3)
        await _until(lambda: len(_stored_keys(session)) == 1, 10, "phone 0's enter stored")

        first.__exit__(None, None, None)  # the server goes away
        walk(1, 40)  # enter and a dwell while the server is down
        walk(2, 3)
        clock.advance(30)  # everyone leaves: exits
        await _until(lambda: len(agent.tracker) == 0, 10, "every presence ended")
        await _until(lambda: agent.uplink.stats().failures >= 2, 20, "delivery failed while down")
        waiting = agent.outbox.depth()
        assert waiting >= 5, "enter, dwell, enter and exits queue up while the server is down"

        with LiveServer(create_app(settings, clock=clock), port=port):  # back, same address and database
            await _until(lambda: agent.outbox.depth() == 0, 30, "outbox drained after the server came back")
            stop.set()
            await asyncio.wait_for(running, 10)

    stored = _stored_keys(session)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert len(stored) == 1 + waiting, "an event was lost"

    assert agent.uplink.stats().set_aside == 0


def _agent_env(state_dir: Path, url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_AGENT_")}
    return env | {
        "BEACON_AGENT_CONFIG": str(state_dir / "absent.toml"),
        "BEACON_AGENT_STATE_DIR": str(state_dir),
        "BEACON_AGENT_SERVER_URL": url,
        # No BlueZ here: the scanner keeps retrying in the background while the uplink drains the outbox.
        "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={state_dir / 'no-bus'}",
        "PYTHONUNBUFFERED": "1",
    }


def _depth(outbox: Path) -> int:
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_mid_flush_then_restart_loses_nothing_and_duplicates_nothing(
    database_url: str, session: Session, tmp_path: Path
):
    # 20 phones opt in from this one test client: above the per-client opt-in limit meant for the public.
    settings = Settings(
        environment="test", database_url=database_url, secret_key="k" * 40, optin_per_hour_per_client=100
    )
    now = datetime.now(UTC)
    charity = make_charity(session, now)
    state = tmp_path / "agent"
    with LiveServer(create_app(settings)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            token = client.post("/gateway/v1/enroll", json={"code": charity.enrolment_code}).json()["token"]
            phones = [client.post("/mobile/v1/optin", json=CONSENT).json() for _ in range(20)]
        write_secret(state / "token", token)
        events = []
        for n in range(1_000):
            phone = phones[n % len(phones)]
            at = now - timedelta(seconds=n % 60)
            key = eid(bytes.fromhex(phone["identity_key"]), int(at.timestamp()), phone["rotation_exponent"])
            events.append(PresenceEvent(f"evt-{uuid.uuid4().hex}", "dwell", key.hex(), at, -60.0, 1.5, 30.0))
        with Outbox(state / "outbox.db") as outbox:
            outbox.put(events)

        command = [sys.executable, "-m", "beacon_agent", "run"]
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        with first_log.open("w") as log:
            agent = subprocess.Popen(command, env=_agent_env(state, server.url), stderr=log)
        try:
            deadline = time.monotonic() + 60
            while not _stored_keys(session):
                assert agent.poll() is None, first_log.read_text()
                assert time.monotonic() < deadline, "the agent delivered nothing"
                time.sleep(0.005)
            agent.send_signal(signal.SIGKILL)  # the first batch is committed; the agent is mid-flush
            agent.wait(10)
        finally:
            agent.kill()
        at_kill = len(_stored_keys(session))
        assert 0 < at_kill < len(events), "the kill must land mid-flush to prove anything"

        with second_log.open("w") as log:
            agent = subprocess.Popen(command, env=_agent_env(state, server.url), stderr=log)
        try:
            deadline = time.monotonic() + 60
            while _depth(state / "outbox.db"):
                assert agent.poll() is None, second_log.read_text()
                assert time.monotonic() < deadline, "the restarted agent did not drain its outbox"
                time.sleep(0.05)
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)
        finally:
            agent.kill()
        stderr = second_log.read_text()
        assert agent.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr

    stored = _stored_keys(session)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert sorted(stored) == sorted(event.id for event in events), "an event was lost"
