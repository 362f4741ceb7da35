"""A server killed with SIGKILL while a webhook receiver holds its request, then started again on the same
database: the restarted server sends the message again (same webhook-id) once the claim's lease ends, and
the message ends `sent`. Real `nahbar serve` processes, a real receiver on loopback."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.db import make_engine
from server.webhooks.models import WebhookMessage
from tests.admin_world import API, make_world
from tests.conftest import TEST_SECRET
from tests.processes import Background, clean_env, free_port
from tests.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.slow
WAIT_S = 30.0


def _serve(database_url: str, port: int, log: Path) -> Background:
    env = clean_env(
        NAHBAR_DATABASE_URL=database_url,
        NAHBAR_SECRET_KEY=TEST_SECRET,
        NAHBAR_ENVIRONMENT="test",
        NAHBAR_ALLOW_PRIVATE_WEBHOOK_HOSTS="true",  # the receiver is on loopback
        NAHBAR_WEBHOOK_TIMEOUT_SECONDS="1",  # a short lease: 1 + 1 + 5 s
        NAHBAR_COOKIE_SECURE="false",
    )
    server = Background(["nahbar", "serve", "--port", str(port)], env=env, cwd=log.parent, log=log)
    server.wait_until_ready(f"http://127.0.0.1:{port}")
    return server


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT_S} s"
        time.sleep(0.1)


def test_a_killed_server_resends_after_restart(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    with Session(engine) as session:
        world = make_world(session, datetime.now(UTC))
    org = world.ids["a"]["org_id"]
    hold = threading.Event()
    with receiving(Receiver(hold=hold)) as receiver:
        port = free_port()
        first = _serve(database_url, port, tmp_path / "first.log")
        try:
            base = f"http://127.0.0.1:{port}{API}/organisations/{org}/webhooks"
            created = httpx.post(
                base,
                json={"url": receiver.url, "event_types": ["prompt.accepted"]},
                headers=world.headers["owner_a"],
            )
            assert created.status_code == 201, created.text
            receiver.secrets = [created.json()["secret"]]
            endpoint = created.json()["endpoint"]["id"]
            test = httpx.post(f"{base}/{endpoint}/test", headers=world.headers["owner_a"])
            assert test.status_code == 202, test.text
            assert receiver.arrived.wait(WAIT_S), "the first server sent nothing"
            first.process.send_signal(signal.SIGKILL)  # mid-delivery: the receiver still holds the request
            first.process.wait(10)
        finally:
            if first.process.poll() is None:
                first.stop()
        hold.set()
        second = _serve(database_url, port, tmp_path / "second.log")
        try:
            _wait(lambda: len(receiver.received) >= 2, "the resend")

            def status() -> str | None:
                with Session(engine) as session:
                    return session.scalar(select(WebhookMessage.status))

            _wait(lambda: status() == "sent", "the message's record as sent")
        finally:
            second.stop()
    engine.dispose()
    first_try, resent = receiver.received[0], receiver.received[1]
    assert first_try.headers["webhook-id"] == resent.headers["webhook-id"]
    assert resent.verified is not None
    assert resent.verified["type"] == "webhook.test"
    assert len(receiver.received) == 2  # sent once more, not again after it was recorded
