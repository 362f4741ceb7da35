"""Serving a database nobody migrated yet: the background work waits quietly, and starts once it is migrated.

Before, the outbox sender logged a traceback every second and each job one on every run, which buried the
one line that mattered: run `nahbar migrate`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.core.config import Settings
from server.core.db import make_engine
from server.core.migrate import upgrade
from tests.conftest import TEST_SECRET

WAITS = " waits for the database schema"
STILL_WAITS = " still waits for the database schema"
# What fails on an empty database within seconds of the start: the sender at once, the jobs run at start.
COMPONENTS = (
    "the outbox sender",
    "job eid-rotation",
    "job retention",
    "job accounts-cleanup",
    "job impact-fold",
    "job webhook-send",
    "job webhook-log-cleanup",
)


def _wait_for(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_an_unmigrated_database_gets_one_warning_per_component_then_works_once_migrated(
    empty_database_url, caplog
):
    caplog.set_level(logging.DEBUG, logger="nahbar")
    settings = Settings(environment="test", database_url=empty_database_url, secret_key=TEST_SECRET)

    def records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith("nahbar")]

    def tracebacks() -> list[logging.LogRecord]:
        return [r for r in records() if r.exc_info]

    def retries(component: str) -> int:
        return sum(r.getMessage() == component + STILL_WAITS for r in records())

    with TestClient(create_app(settings)) as client:
        pending = client.get("/readyz")
        assert pending.status_code == 503
        assert pending.json()["code"] == "migrations_pending"
        # Long enough for the sender to retry twice and the EID rotation (every 5 s) to run again.
        _wait_for(
            lambda: (
                bool(tracebacks()) or (retries("the outbox sender") >= 2 and retries("job eid-rotation") >= 1)
            ),
            within_s=30,
            what="the sender and the EID rotation to try again",
        )
        assert tracebacks() == [], [r.getMessage() for r in tracebacks()]
        warnings = [r.getMessage() for r in records() if r.levelno >= logging.WARNING]
        waits = [m for m in warnings if WAITS in m]
        assert Counter(m.split(WAITS)[0] for m in waits) == dict.fromkeys(COMPONENTS, 1), warnings
        assert all("run 'nahbar migrate'" in m for m in waits), waits

        engine = make_engine(empty_database_url)
        upgrade(engine)
        engine.dispose()

        _wait_for(lambda: client.get("/readyz").status_code == 200, within_s=30, what="/readyz to say ready")
        resumed = "the outbox sender resumed: the database schema is current"
        _wait_for(
            lambda: any(r.getMessage() == resumed for r in records()),
            within_s=10,
            what="the sender to resume",
        )
        assert any(
            r.getMessage() == "job eid-rotation resumed: the database schema is current" for r in records()
        )
    assert tracebacks() == [], [r.getMessage() for r in tracebacks()]
