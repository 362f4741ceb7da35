"""Migrations build the whole model from empty on both databases, and /readyz knows when they are due."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from server.app import create_app
from server.core.config import Settings
from server.core.db import Base, make_engine
from server.core.migrate import current_revision, head_revision, upgrade
from tests.conftest import POSTGRES_URL, TEST_SECRET, _admin_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_template")  # fails or skips when PostgreSQL is missing
    name = f"nahbar_e_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_from_empty_matches_the_models_and_can_run_twice(empty_url):
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)  # a second run is a no-op, as `nahbar migrate` on every deploy needs
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_readyz_reports_pending_migrations_then_ready(empty_url):
    settings = Settings(environment="test", database_url=empty_url, secret_key=TEST_SECRET)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        pending = client.get("/readyz")
        assert pending.status_code == 503
        assert pending.json()["code"] == "migrations_pending"
        assert "nahbar migrate" in pending.json()["detail"]
        engine = make_engine(empty_url)
        upgrade(engine)
        engine.dispose()
        # Keys are loaded by the eid-rotation job once the schema is there (every few seconds); until then
        # readyz says so, and the gateway API refuses events with 503 rather than dropping them.
        deadline = time.monotonic() + 20
        while (ready := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
            assert ready.json()["code"] == "eid_index_loading"
            time.sleep(0.2)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"


def test_readyz_says_when_the_database_is_unreachable():
    url = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"  # nothing listens on port 9
    settings = Settings(environment="test", database_url=url, secret_key=TEST_SECRET)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["code"] == "database_unreachable"
