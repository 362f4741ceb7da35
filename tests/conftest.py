"""Shared fixtures: both databases, an injected clock, the app over HTTP (ASGI), and required parts."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from server.app import create_app
from server.core.config import Settings
from server.core.db import make_engine
from server.core.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get("NAHBAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
REDIS_URL = os.environ.get("NAHBAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_part(available: bool, what: str) -> None:
    """Skip when a part (PostgreSQL, D-Bus, a browser) is missing locally; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing, and CI=true forbids skipping: scripts/setup-machine must provide it")
    pytest.skip(f"{what} is missing")


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    # A Wednesday noon in Berlin: inside every default schedule, outside quiet hours.
    return Clock(datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC))


# --- PostgreSQL: one migrated template database per run, cloned for each test -------------------------


def _admin_engine() -> Engine:
    return create_engine(
        make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        admin.dispose()
        require_part(False, f"PostgreSQL at {POSTGRES_URL} ({type(exc).__name__})")
    name = f"nahbar_tmpl_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@contextmanager
def _postgres_copy(request: pytest.FixtureRequest) -> Iterator[str]:
    """A copy of the migrated template, private to the test, dropped after it."""
    template = request.getfixturevalue("postgres_template")
    name = f"nahbar_t_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "nahbar.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with _postgres_copy(request) as url:
        yield url


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty PostgreSQL database private to the test, for what only PostgreSQL has (mark the
    test `postgres`)."""
    with _postgres_copy(request) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind that was never migrated (no tables at all), private to the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_template")  # skips (fails under CI) when PostgreSQL is not there
    name = f"nahbar_e_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Push services in tests are local peers on loopback: allowed here, refused by default.
    return Settings(
        environment="test",
        database_url=database_url,
        secret_key=TEST_SECRET,
        eid_rotation_exponent=10,
        allow_private_push_hosts=True,
        allow_private_webhook_hosts=True,
    )


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client


@pytest.fixture
def quiet_client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """The app without its scheduler, so that the test alone decides when a job runs."""
    with TestClient(
        create_app(settings.model_copy(update={"scheduler_enabled": False}), clock=clock)
    ) as client:
        yield client


@pytest.fixture
def redis_url() -> str:
    """The Redis server the tests share (mark the test `redis`; give keys a prefix of the test's own)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        require_part(False, f"Redis at {REDIS_URL} ({type(exc).__name__})")
    client.close()
    return REDIS_URL


# --- A real server on a loopback port, for clients that speak real HTTP (the agent, the demo) ----------


class LiveServer:
    def __init__(self, app: object, port: int = 0) -> None:
        import socket
        import threading

        import uvicorn

        if not port:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            sock.close()
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        from server.core.serving import uvicorn_options

        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **uvicorn_options())
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def live_server(settings: Settings, clock: Clock) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, clock=clock)) as server:
        yield server


# --- A real browser: Debian's chromium driven by Playwright (browsers cannot be downloaded here) -----------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless chromium per test module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_part(False, "the Python package playwright")
    require_part(os.access(CHROMIUM, os.X_OK), CHROMIUM)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
