"""Schemathesis against the running server with real credentials: requests generated from the OpenAPI document
(valid ones and invalid ones) to every operation of the public, gateway, phone and admin APIs. Every answer
must be documented (status code, content type, body schema), none may be a 5xx, and the server may log no
traceback while answering them."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.core.config import Settings
from server.core.db import make_engine
from server.sites.models import Site
from server.sites.service import issue_enrolment_code
from server.tenancy.models import AdminUser
from tests.admin_world import make_world, signed_in
from tests.conftest import POSTGRES_URL, TEST_SECRET, Clock, LiveServer
from tests.world import make_charity

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
EXAMPLES = int(os.environ.get("NAHBAR_FUZZ_EXAMPLES", "25"))  # per operation and mode; raise it to hunt
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {
            "mode": "all",  # valid requests and invalid ones
            "max-examples": EXAMPLES,
            "with-security-parameters": False,  # the real credentials are sent instead
        },
        "phases": {
            "coverage": {"enabled": os.environ.get("NAHBAR_FUZZ_COVERAGE") == "1"},
            "stateful": {"enabled": False},
        },
    }
)


def _document() -> dict:
    settings = Settings(environment="test", database_url="sqlite://", secret_key=TEST_SECRET)
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)


class Tracebacks(logging.Handler):
    """Every log record that carries an exception, from our loggers and from the server's."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.found.append(f"{record.name}: {record.getMessage()}\n{self.format(record)}")


@dataclass
class Server:
    url: str
    http: requests.Session
    sessions: sessionmaker[Session]
    operator: AdminUser
    site_id: int
    tracebacks: Tracebacks


@dataclass
class Api:
    server: Server
    gateway: dict[str, str]
    phone: dict[str, str]
    admin: dict[str, str]

    def credentials(self, path: str) -> dict[str, str]:
        if path.startswith("/gateway/"):
            return self.gateway
        if path.startswith("/mobile/"):
            return self.phone
        if path.startswith("/admin/"):
            return self.admin
        return {}


@pytest.fixture(scope="module")
def fuzz_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite by default (quick); NAHBAR_FUZZ_DATABASE=postgres hunts on PostgreSQL instead."""
    if os.environ.get("NAHBAR_FUZZ_DATABASE") != "postgres":
        path = tmp_path_factory.mktemp("fuzz") / "nahbar.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"nahbar_fuzz_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def server(fuzz_database: str) -> Iterator[Server]:
    """One server on a loopback port for the whole run, over a database with two charities (and whatever the
    operations before made): state builds up as it would in use."""
    clock = Clock(NOW)
    engine = make_engine(fuzz_database)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        world = make_world(session, clock())
        charity = make_charity(session, clock())
        site = session.get_one(Site, charity.site_id)
        site.ibeacon_uuid, site.ibeacon_major = "f7826da6-4fa2-4e98-8024-bc5b71e0893e", 1
        session.commit()
    settings = Settings(
        environment="test",
        database_url=fuzz_database,
        secret_key=TEST_SECRET,
        scheduler_enabled=False,
        optin_per_hour_per_client=100_000,  # every operation opts a fresh phone in
    )
    tracebacks = Tracebacks()
    watched = [logging.getLogger(), logging.getLogger("uvicorn.error")]
    for logger in watched:
        logger.addHandler(tracebacks)
    try:
        with LiveServer(create_app(settings, clock=clock)) as live, requests.Session() as http:
            yield Server(live.url, http, sessions, world.users["operator"], charity.site_id, tracebacks)
    finally:
        for logger in watched:
            logger.removeHandler(tracebacks)
        engine.dispose()


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    """Fresh credentials for each operation (an earlier one may have logged out, erased its phone or revoked
    its gateway): an enrolled gateway, an opted-in phone, the operator signed in (sees everything)."""
    with server.sessions() as session:
        code = issue_enrolment_code(session, session.get_one(Site, server.site_id), "fuzz", NOW).code
        admin = signed_in(session, server.operator, NOW)
        session.commit()
    enrolled = server.http.post(f"{server.url}/gateway/v1/enroll", json={"code": code})
    body = {"consent_text_version": "2026-11", "scopes": ["volunteer", "donation"], "language": "de"}
    opted = server.http.post(f"{server.url}/mobile/v1/optin", json=body)
    assert (enrolled.status_code, opted.status_code) == (200, 201), (enrolled.text, opted.text)
    gateway = {"Authorization": f"Bearer {enrolled.json()['token']}"}
    phone = {"Authorization": f"Bearer {opted.json()['device_token']}"}
    yield Api(server, gateway, phone, admin)
    found, server.tracebacks.found[:] = list(server.tracebacks.found), []
    assert found == [], "the server logged tracebacks:\n" + "\n".join(found)


@schema.parametrize()
@settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_answers_as_documented(case, api: Api):
    case.call_and_validate(
        base_url=api.server.url,
        session=api.server.http,
        headers=api.credentials(case.path),
        checks=CHECKS,
    )
