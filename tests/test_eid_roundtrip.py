"""Issue 4's round trip: a phone advertises its EID through the gateway pipeline and, across a rotation
boundary, the server resolves both of its EIDs to one subscriber and merges them into one visit.

The real agent (tracker -> outbox -> uplink) posts to a real server on a loopback port and a real database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from beacon_agent.agent import Agent
from beacon_agent.config import AgentSettings
from beacon_agent.frames import EDDYSTONE_SERVICE_UUID
from mobile_api.eid import eid
from server.app import create_app
from server.core.config import Settings
from server.presence.models import ProximityEvent, Visit
from server.subscribers.models import Subscriber
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

CONSENT = {"consent_text_version": "2026-11", "scopes": ["volunteer", "donation"], "language": "de"}


class QuietRadio:
    """The antenna: silent on its own; the test hands the agent the phone's advertisements itself."""

    def __init__(self, _agent: Agent) -> None:
        pass

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {seconds} s: {what}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_a_phone_walking_past_across_an_eid_rotation_is_one_visit(
    settings: Settings, session: Session, clock: Clock, tmp_path: Path
):
    charity = make_charity(session, clock())
    with LiveServer(create_app(settings, clock=clock)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            enrolled = await client.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})
            phone = (await client.post("/mobile/v1/optin", json=CONSENT)).json()
            identity_key, k = bytes.fromhex(phone["identity_key"]), phone["rotation_exponent"]
            agent = Agent(
                AgentSettings(server_url=server.url, state_dir=tmp_path / "agent"),
                client,
                enrolled.json()["token"],
                source=QuietRadio,
                wall_clock=lambda: clock().timestamp(),
                tick_s=0.05,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))

            window = 1 << k
            clock.advance(window - int(clock().timestamp()) % window - 25)  # 25 s before the EID turns
            boundary = int(clock().timestamp()) + 25
            broadcast: list[bytes] = []
            for _ in range(50):  # walking past, one advertisement a second, across the boundary
                now = int(clock().timestamp())
                frame = bytes([0x30, 0xEE]) + eid(identity_key, now, k)
                if frame[2:] not in broadcast:
                    broadcast.append(frame[2:])
                agent.on_advertisement({}, {EDDYSTONE_SERVICE_UUID: frame}, -60, time.monotonic())
                clock.advance(1)
                await asyncio.sleep(0.01)  # the agent's tick loop runs meanwhile, as it would
            assert len(broadcast) == 2, "the phone's EID changed at the boundary"

            clock.advance(40)  # gone: the tracker ends the presence
            await _until(lambda: len(agent.tracker) == 0, 10, "the presence ended")
            await _until(lambda: agent.outbox.depth() == 0, 20, "every event delivered")
            stop.set()
            await asyncio.wait_for(running, 10)

    session.expire_all()
    subscriber_id = session.scalars(select(Subscriber.id)).one()
    visits = session.scalars(select(Visit)).all()
    assert [(v.subscriber_id, v.site_id) for v in visits] == [(subscriber_id, charity.site_id)]
    visit = visits[0]
    events = session.scalars(select(ProximityEvent).order_by(ProximityEvent.observed_at)).all()
    assert {e.visit_id for e in events} == {visit.id}
    assert {e.subscriber_id for e in events} == {subscriber_id}
    # The tracker heard two identifiers, one after the other, and took the second as the same phone's next
    # one: a single enter before the turn, and the presence reported on under the new EID after it.
    enters = [e.observed_at for e in events if e.kind == "enter"]
    assert len(enters) == 1
    assert _ts(enters[0]) < boundary
    assert any(_ts(e.observed_at) >= boundary for e in events if e.kind != "enter")
    assert agent.tracker.stats.handovers == 1
    assert _ts(visit.started_at) < boundary < _ts(visit.last_seen_at)


def _ts(moment: datetime) -> float:
    # SQLite hands datetimes back naive (stored as UTC); PostgreSQL aware.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
