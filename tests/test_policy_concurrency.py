"""Race-free caps: one person seen at the same moment by gateways at many sites, the batches arriving together
at real server processes (two on PostgreSQL, one threaded on SQLite), gets exactly the prompts the caps allow.

Without the person's lock (policy.repository.lock_person) the PostgreSQL case gives 3 prompts: the daily slots
alone guard only the daily cap, not the weekly one this test makes the binding one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.app import create_app
from server.prompts.models import PromptDecision
from server.tenancy.models import PlatformSettings
from tests.conftest import TEST_SECRET
from tests.world import event, make_charity, opt_in

NAHBAR = Path(sys.executable).parent / "nahbar"
SITES = 30
CAP = 2  # the weekly cap set below; the daily slots (a second guard) alone would allow 3


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is around noon now, so quiet hours never interfere with the test."""
    offset = (12 - now.hour + 12) % 24 - 12  # hours to add to UTC, in -12..11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def servers(database_url: str, count: int) -> Iterator[list[str]]:
    """`count` real `nahbar serve` processes on the same database, ready (EID index loaded)."""
    env = os.environ | {
        "NAHBAR_DATABASE_URL": database_url,
        "NAHBAR_SECRET_KEY": TEST_SECRET,
        "NAHBAR_ENVIRONMENT": "test",
        "NAHBAR_EID_ROTATION_EXPONENT": "10",
        "NAHBAR_LOG_LEVEL": "WARNING",
    }
    ports = [free_port() for _ in range(count)]
    log = Path(os.environ.get("NAHBAR_TEST_SERVER_LOG", os.devnull)).open("a")  # noqa: SIM115 - closed below
    processes = [
        subprocess.Popen(
            [str(NAHBAR), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} never became ready"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        log.close()


@pytest.mark.slow
def test_simultaneous_sightings_at_many_sites_get_exactly_the_capped_prompts(database_url, session):
    now = datetime.now(UTC)
    zone = noon_zone(now)
    charities = [make_charity(session, now, slug=f"org{i}", timezone=zone) for i in range(SITES)]
    limits = session.scalars(select(PlatformSettings)).one()
    limits.max_prompts_per_day, limits.max_prompts_per_week, limits.max_prompts_per_month = 3, 2, 4
    session.commit()
    settings_app = create_app_for(database_url)
    with TestClient(settings_app) as client:
        phone = opt_in(client)

    workers = 2 if database_url.startswith("postgresql") else 1
    with servers(database_url, workers) as urls:
        gateways = []
        for i, charity in enumerate(charities):
            answer = httpx.post(
                f"{urls[i % workers]}/gateway/v1/enroll", json={"code": charity.enrolment_code}
            )
            assert answer.status_code == 200, answer.text
            gateways.append({"Authorization": f"Bearer {answer.json()['token']}"})
        seen = datetime.now(UTC)
        batches = [
            {"events": [event(f"evt-c{i}-a", phone, seen), event(f"evt-c{i}-b", phone, seen, "dwell", 20)]}
            for i in range(SITES)
        ]
        start = threading.Barrier(SITES)

        def send(i: int) -> httpx.Response:
            with httpx.Client(base_url=urls[i % workers], timeout=30) as http:
                start.wait()
                return http.post("/gateway/v1/events", json=batches[i], headers=gateways[i])

        with ThreadPoolExecutor(SITES) as pool:
            answers = list(pool.map(send, range(SITES)))

    assert [a.status_code for a in answers] == [200] * SITES, [
        a.text for a in answers if a.status_code != 200
    ]
    assert sum(a.json()["prompts"] for a in answers) == CAP
    session.expire_all()
    prompted = session.scalar(select(func.count()).where(PromptDecision.outcome == "prompted"))
    assert prompted == CAP
    reasons = session.scalars(select(PromptDecision.reason)).all()
    assert reasons.count("global_daily_cap") + reasons.count("global_weekly_cap") == SITES - CAP


def create_app_for(database_url: str):
    from server.core.config import Settings

    settings = Settings(
        environment="test", database_url=database_url, secret_key=TEST_SECRET, eid_rotation_exponent=10
    )
    return create_app(settings)
