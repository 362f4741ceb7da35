"""Alerts to an organisation's owners: each condition fires once, stays quiet while it holds, fires again only
after it cleared and recurred; the e-mail reaches a real SMTP server on loopback (aiosmtpd) after the commit,
addressed to the owners alone, in the organisation's language; without SMTP settings nothing is sent."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from server.alerts import service as alert_service
from server.alerts.models import AlertMail, AlertState
from server.alerts.tasks import run as run_alert_job
from server.campaigns.models import Campaign
from server.core.config import Settings
from server.core.db import make_sessionmaker
from server.core.security import KeySealer
from server.prompts.models import PromptDecision
from server.runtime import Runtime
from server.scheduler import start_scheduler
from server.sites import service as sites
from server.sites.models import Gateway, Site, SiteBeacon
from server.sites.schemas import BeaconSightingIn, HeartbeatIn
from server.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.admin_world import add_user
from tests.conftest import TEST_SECRET, Clock
from tests.world import make_charity

OWNERS = ["ada@hospiz.example", "bo@hospiz.example"]
BEACON = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e/1/1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """A real SMTP server on a loopback port (aiosmtpd) that keeps what it receives."""

    port: int = field(default_factory=free_port)
    password: bytes | None = None  # set: AUTH is offered, and this password for "alerts" is the one taken
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    on_data: Callable[[], None] | None = None

    def start(self) -> SmtpServer:
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                if server.on_data is not None:
                    server.on_data()
                parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
                return "250 OK"

        def authenticate(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
        ) -> AuthResult:
            server.logins.append((data.login, data.password))
            return AuthResult(success=data.login == b"alerts" and data.password == server.password)

        extra: dict[str, Any] = {}
        if self.password is not None:
            extra = {"authenticator": authenticate, "auth_require_tls": False}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def mail_settings(database_url: str, port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "public_url": "https://nahbar.example.org",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,  # the local server speaks plain SMTP; the STARTTLS test turns it on
        "smtp_from": "Nahbar <alerts@nahbar.example.org>",
    }
    return Settings(**(values | changes))


@dataclass
class World:
    sessions: sessionmaker[Session]
    org_id: int
    site_id: int
    gateway_id: int
    campaign_id: int
    other_gateway_id: int


def build(session: Session, now: datetime) -> World:
    """Hospiz (two owners, an editor, a disabled owner; one site, German) and Tafel (its own owner), each
    with an enrolled gateway that sent a heartbeat now."""
    hospiz = make_charity(session, now)
    tafel = make_charity(session, now, slug="tafel")
    for address in OWNERS:
        add_user(session, address, roles={hospiz.organisation_id: "owner"})
    add_user(session, "cy@hospiz.example", roles={hospiz.organisation_id: "editor"})
    gone = add_user(session, "dee@hospiz.example", roles={hospiz.organisation_id: "owner"})
    gone.disabled_at = now
    add_user(session, "ed@tafel.example", roles={tafel.organisation_id: "owner"})
    gateway, _ = sites.enrol(session, hospiz.enrolment_code, now)
    other, _ = sites.enrol(session, tafel.enrolment_code, now)
    session.commit()
    world = World(
        sessionmaker(bind=session.get_bind(), expire_on_commit=False),
        hospiz.organisation_id,
        hospiz.site_id,
        gateway.id,
        hospiz.campaign_id,
        other.id,
    )
    beat(session, world.gateway_id, now)
    beat(session, world.other_gateway_id, now)
    return world


def beat(session: Session, gateway_id: int, now: datetime, **changes: Any) -> None:
    """A heartbeat of the gateway, recorded as the heartbeat endpoint records it."""
    values: dict[str, Any] = {
        "version": "0.1.0",
        "uptime_s": 60.0,
        "scanner_mode": "passive",
        "adverts_seen_per_s": 10.0,
        "adverts_kept_per_s": 1.0,
        "adverts_dropped_per_s": 9.0,
        "outbox_depth": 0,
        "outbox_dropped_full": 0,
        "outbox_set_aside": 0,
        "scanner_restarts": 0,
        "scanner_power_cycles": 0,
        "scanner_state": "scanning",
    }
    gateway = session.get(Gateway, gateway_id, populate_existing=True)
    assert gateway is not None
    sites.record_heartbeat(session, gateway, HeartbeatIn(**(values | changes)), now)
    session.commit()


@pytest.fixture
def runtime_for(clock: Clock) -> Iterator[Callable[[Settings], Runtime]]:
    made: list[Runtime] = []

    def build_runtime(settings: Settings) -> Runtime:
        made.append(Runtime.build(settings, clock))
        return made[-1]

    yield build_runtime
    for runtime in made:
        runtime.close()


def states(session: Session) -> set[tuple[str, int, str]]:
    session.expire_all()
    return {(s.subject_kind, s.subject_id, s.condition) for s in session.scalars(select(AlertState))}


def test_a_silent_gateway_alerts_its_owners_once_and_again_only_after_it_came_back(
    database_url, session, clock: Clock, smtp, runtime_for
):
    world = build(session, clock())
    runtime = runtime_for(mail_settings(database_url, smtp.port))
    beat(session, world.other_gateway_id, clock.advance(29 * 60))
    run_alert_job(runtime)  # 29 minutes without a heartbeat: within NAHBAR_ALERT_GATEWAY_MINUTES (30)
    assert smtp.received == []
    beat(session, world.other_gateway_id, clock.advance(2 * 60))
    assert run_alert_job(runtime) == 1
    [first] = smtp.received
    assert sorted(first.recipients) == OWNERS, "the owners only: not the editor, a disabled owner or Tafel's"
    assert first.mail_from == "alerts@nahbar.example.org"
    assert first.message["Subject"] == "Nahbar: Gateway „window“ (hospiz door) meldet sich nicht"
    body = first.message.get_content()
    assert "seit 25. November 2026 um 12:00 Uhr (Europe/Berlin) nicht mehr beim Server gemeldet" in body
    assert "beacon-agent doctor" in body
    assert "is not reporting" not in body, "the organisation's sites are all German: German only"

    for _ in range(3):  # still silent: nothing more
        beat(session, world.other_gateway_id, clock.advance(10 * 60))
        assert run_alert_job(runtime) == 0
    assert len(smtp.received) == 1

    beat(session, world.gateway_id, clock.advance(60))  # back
    run_alert_job(runtime)
    assert states(session) == set()
    beat(session, world.other_gateway_id, clock.advance(31 * 60))  # and silent again
    assert run_alert_job(runtime) == 1
    assert len(smtp.received) == 2
    assert sorted(smtp.received[1].recipients) == OWNERS


def test_a_failing_scanner_alerts_once_it_has_failed_for_the_configured_time(
    database_url, session, clock: Clock, smtp, runtime_for
):
    world = build(session, clock())
    runtime = runtime_for(mail_settings(database_url, smtp.port, alert_gateway_minutes=10))
    failing = {"scanner_state": "failing", "scanner_failures": 3, "scanner_error": "adapter_missing"}

    def minute(**changes: Any) -> int:
        now = clock.advance(60)
        beat(session, world.gateway_id, now, **changes)
        beat(session, world.other_gateway_id, now)
        return run_alert_job(runtime)

    assert [minute(**failing) for _ in range(10)] == [0] * 10  # first seen, then 9 minutes: under 10
    assert minute(**failing) == 1
    [alert] = smtp.received
    assert alert.message["Subject"] == "Nahbar: Gateway „window“ (hospiz door) hört kein Bluetooth"
    assert "(Ursache laut Gateway: kein Bluetooth-Adapter gefunden)" in alert.message.get_content()
    assert [minute(**failing) for _ in range(5)] == [0] * 5
    assert minute() == 0  # scanning again: cleared
    assert states(session) == set()
    assert [minute(**failing) for _ in range(11)] == [0] * 10 + [1]
    # A scan restarted because it heard nothing is an empty street, not a failure.
    assert minute(scanner_state="failing", scanner_failures=5, scanner_error="silent") == 0
    assert states(session) == set()


def test_a_low_battery_and_an_unheard_beacon_alert_once_each_until_they_clear(
    database_url, session, clock: Clock, smtp, runtime_for
):
    world = build(session, clock())
    session.add(SiteBeacon(site_id=world.site_id, kind="ibeacon", identifier=BEACON[8:], label="Tür"))
    session.commit()
    runtime = runtime_for(mail_settings(database_url, smtp.port))

    def minute(battery_mv: int | None = None, heard: bool = True, step: float = 60) -> int:
        now = clock.advance(step)
        sighting = [BeaconSightingIn(identifier=BEACON, rssi=-60, seen_s_ago=1, battery_mv=battery_mv)]
        beat(session, world.gateway_id, now, beacons=sighting if heard else [])
        beat(session, world.other_gateway_id, now)
        return run_alert_job(runtime)

    assert minute(battery_mv=2_900) == 0
    assert minute(battery_mv=2_400) == 1
    [low] = smtp.received
    assert low.message["Subject"] == "Nahbar: Batterie des Beacons „Tür“ (hospiz door) ist fast leer"
    assert "Batteriespannung von 2,40 V (Warnschwelle 2,50 V)" in low.message.get_content()
    assert [minute(battery_mv=2_350) for _ in range(3)] == [0, 0, 0]
    assert minute(battery_mv=3_000) == 0  # a new battery
    assert minute(battery_mv=2_450) == 1
    assert len(smtp.received) == 2

    # Heard an hour ago, then not for a day (the gateway keeps sending heartbeats without it).
    minute(battery_mv=3_000)
    assert minute(heard=False, step=23 * 3600) == 0
    assert minute(heard=False, step=3600) == 1
    unheard = smtp.received[-1]
    assert unheard.message["Subject"] == "Nahbar: Beacon „Tür“ (hospiz door) ist nicht mehr zu hören"
    assert "seit 25. November 2026 um 12:" in unheard.message.get_content()
    assert minute(heard=False) == 0
    assert minute() == 0  # heard again
    assert minute(heard=False, step=24 * 3600) == 1
    assert len(smtp.received) == 4


def test_a_beacon_never_heard_alerts_a_day_after_it_was_first_looked_for(
    database_url, session, clock: Clock, smtp, runtime_for
):
    world = build(session, clock())
    session.add(
        SiteBeacon(site_id=world.site_id, kind="eddystone_uid", identifier="ab" * 10 + "/" + "cd" * 6)
    )
    session.commit()
    runtime = runtime_for(mail_settings(database_url, smtp.port))
    assert run_alert_job(runtime) == 0
    clock.advance(24 * 3600)
    for gateway_id in (world.gateway_id, world.other_gateway_id):
        beat(session, gateway_id, clock())
    assert run_alert_job(runtime) == 1
    assert "(noch nie) gehört" in smtp.received[0].message.get_content()


def prompt(session: Session, world: World, day: date, at: datetime) -> None:
    """A prompt the campaign gave, as the live path writes it (of a person since erased: no subscriber)."""
    session.add(
        PromptDecision(
            site_id=world.site_id,
            campaign_id=world.campaign_id,
            outcome="prompted",
            reason="prompted",
            decided_at=at,
            local_day=day,
            day_slot=0,
        )
    )
    session.commit()


def test_a_campaign_out_of_its_daily_budget_alerts_once_a_day_in_both_languages(
    database_url, session, clock: Clock, smtp, runtime_for
):
    world = build(session, clock())
    campaign = session.get(Campaign, world.campaign_id)
    assert campaign is not None
    campaign.daily_budget = 2
    # A second site speaking English: the organisation has no one language, so the mail is in both.
    session.add(
        Site(organisation_id=world.org_id, name="hospiz shop", timezone="Europe/Berlin", language="en")
    )
    session.commit()
    runtime = runtime_for(mail_settings(database_url, smtp.port, alert_gateway_minutes=7 * 24 * 60))
    today = date(2026, 11, 25)

    prompt(session, world, today, clock())
    assert run_alert_job(runtime) == 0
    prompt(session, world, today, clock.advance(60))
    assert run_alert_job(runtime) == 1
    [spent] = smtp.received
    assert spent.message["Subject"] == (
        "Nahbar: Kampagne „hospiz volunteer“ hat ihr Tagesbudget aufgebraucht / "
        "campaign “hospiz volunteer” has used up its daily budget"
    )
    body = spent.message.get_content()
    german, english = body.split("-" * 40)
    assert "hat heute alle 2 Anfragen ihres Tagesbudgets gestellt" in german
    assert "has given all 2 prompts of its daily budget today" in english
    assert (
        "Diese E-Mail geht an die Inhaber von „hospiz e.V.“ bei Nahbar (https://nahbar.example.org)" in german
    )
    assert run_alert_job(runtime) == 0

    clock.advance(24 * 3600)  # the next day: nothing given yet, the condition cleared
    assert run_alert_job(runtime) == 0
    assert ("campaign", world.campaign_id, "budget_exhausted") not in states(session)
    prompt(session, world, today + timedelta(days=1), clock())
    prompt(session, world, today + timedelta(days=1), clock())
    assert run_alert_job(runtime) == 1
    assert len(smtp.received) == 2


def test_without_smtp_settings_nothing_is_mailed_and_a_warning_is_logged_once(
    database_url, session, clock: Clock, smtp, runtime_for, caplog
):
    world = build(session, clock())
    settings = Settings(environment="test", database_url=database_url, secret_key=TEST_SECRET)
    runtime = runtime_for(settings)
    clock.advance(31 * 60)
    with caplog.at_level(logging.WARNING, logger="nahbar.alerts"):
        assert run_alert_job(runtime) == 0
        beat(session, world.gateway_id, clock.advance(60))
        run_alert_job(runtime)  # Hospiz's gateway is back
        clock.advance(31 * 60)
        run_alert_job(runtime)  # and silent again: another alert (Tafel's is still silent: not again)
    assert states(session) == {
        ("gateway", world.gateway_id, "gateway_silent"),
        ("gateway", world.other_gateway_id, "gateway_silent"),
    }
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AlertMail)) == 0
    assert smtp.received == []
    warnings = [r.getMessage() for r in caplog.records if "NAHBAR_SMTP_HOST" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "alerts are not e-mailed" in warnings[0]


def test_the_mail_goes_out_after_the_commit_and_is_retried_until_the_server_takes_it(
    database_url, engine: Engine, session, clock: Clock, runtime_for
):
    build(session, clock())
    smtp = SmtpServer()  # not listening yet
    runtime = runtime_for(mail_settings(database_url, smtp.port))
    clock.advance(31 * 60)
    assert run_alert_job(runtime) == 0  # two gateways silent; the server does not answer
    session.expire_all()
    mails = session.scalars(select(AlertMail).order_by(AlertMail.id)).all()
    assert [(m.attempts, m.sent_at, m.last_error) for m in mails] == [(1, None, "ConnectionRefusedError")] * 2
    assert {m.next_attempt_at for m in mails} == {clock() + timedelta(minutes=1)}
    session.rollback()  # the test's own reads end here: any transaction open during the send is the job's

    seen_during_send: list[tuple[int, bool]] = []

    def probe() -> None:
        """While the server is given a mail: the alert is committed, and no transaction of ours is open."""
        with engine.connect() as connection:
            committed = connection.execute(select(func.count()).select_from(AlertState)).scalar_one()
            if engine.dialect.name == "postgresql":
                others = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                    )
                ).scalar_one()
                free = others == 0
            else:
                connection.exec_driver_sql("PRAGMA busy_timeout = 0")
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # fails while any writer holds the lock
                connection.exec_driver_sql("ROLLBACK")
                free = True
            seen_during_send.append((committed, free))

    smtp.on_data = probe
    smtp.start()
    try:
        clock.advance(30)
        assert run_alert_job(runtime) == 0, "sent before its pause was over"
        clock.advance(31)
        assert run_alert_job(runtime) == 2
        assert run_alert_job(runtime) == 0
    finally:
        smtp.stop()
    assert len(smtp.received) == 2
    assert seen_during_send == [(2, True), (2, True)]
    session.expire_all()
    assert [(m.attempts, m.last_error) for m in session.scalars(select(AlertMail))] == [(2, None)] * 2


def test_credentials_are_used_and_starttls_is_never_skipped(database_url, session, clock: Clock, runtime_for):
    build(session, clock())
    smtp = SmtpServer(password=b"s3cret-pass").start()
    try:
        clock.advance(31 * 60)
        strict = runtime_for(
            mail_settings(
                database_url,
                smtp.port,
                smtp_starttls=True,
                smtp_username="alerts",
                smtp_password="s3cret-pass",
            )
        )
        assert run_alert_job(strict) == 0, "sent over a server that offers no STARTTLS"
        assert (smtp.received, smtp.logins) == ([], []), "the password went out in clear"
        session.expire_all()
        assert {m.last_error for m in session.scalars(select(AlertMail))} == {"SMTPNotSupportedError"}

        plain = runtime_for(
            mail_settings(database_url, smtp.port, smtp_username="alerts", smtp_password="s3cret-pass")
        )
        clock.advance(61)
        assert run_alert_job(plain) == 2
        assert smtp.logins == [(b"alerts", b"s3cret-pass")] * 2
    finally:
        smtp.stop()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_workers_evaluating_at_once_raise_each_alert_once(database_url, engine, session, clock: Clock):
    """The second waits for the first's transaction (an advisory lock), then finds the alert raised."""
    build(session, clock())
    settings = mail_settings(database_url, free_port())
    sessions = make_sessionmaker(engine)
    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def hold(_session: Session, _org: int, event_type: str, _data: dict[str, Any]) -> None:
        calls.append(event_type)
        if not inside.is_set():
            inside.set()
            assert release.wait(30)

    from server.alerts.tasks import evaluate

    now = clock.advance(31 * 60)
    results: dict[str, Any] = {}

    def worker(name: str) -> None:
        try:
            results[name] = evaluate(sessions, settings, now)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[name] = exc

    alert_service.ON_ALERT.append(hold)
    try:
        first = threading.Thread(target=worker, args=("first",))
        first.start()
        assert inside.wait(30)
        second = threading.Thread(target=worker, args=("second",))
        second.start()
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        deadline = time.monotonic() + 30
        with engine.connect() as connection:
            while connection.execute(waiting).scalar_one() == 0:
                assert time.monotonic() < deadline, "the second worker never waited"
                time.sleep(0.05)
                connection.rollback()
        release.set()
        first.join(30)
        second.join(30)
    finally:
        alert_service.ON_ALERT.remove(hold)
    assert len(results["first"]) == 2, results
    assert results["second"] == [], results
    assert calls == ["alert.gateway_silent"] * 2
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AlertMail)) == 2


def test_hooks_get_each_alert_in_its_transaction_with_nothing_of_passers_by(
    database_url, session, clock: Clock, runtime_for
):
    world = build(session, clock())
    runtime = runtime_for(Settings(environment="test", database_url=database_url, secret_key=TEST_SECRET))
    told: list[tuple[int, str, dict[str, Any]]] = []

    def webhook(hook_session: Session, org: int, event_type: str, data: dict[str, Any]) -> None:
        assert hook_session.in_transaction()
        told.append((org, event_type, data))

    alert_service.ON_ALERT.append(webhook)
    try:
        beat(session, world.other_gateway_id, clock.advance(31 * 60))
        run_alert_job(runtime)
        run_alert_job(runtime)
    finally:
        alert_service.ON_ALERT.remove(webhook)
    assert told == [
        (
            world.org_id,
            "alert.gateway_silent",
            {
                "condition": "gateway_silent",
                "subject": {"kind": "gateway", "id": world.gateway_id},
                "since": "2026-11-25T11:00:00+00:00",
                "gateway": "window",
                "site": "hospiz door",
                "zone": "Europe/Berlin",
                "never": False,
            },
        )
    ]


def test_the_scheduler_runs_the_alert_job_every_minute(settings, clock, runtime_for):
    scheduler = start_scheduler(runtime_for(settings))
    try:
        job = scheduler.scheduler.get_job("alerts")
        assert job is not None
        assert job.trigger.interval == timedelta(minutes=1)
    finally:
        scheduler.shutdown(wait=True)


def test_smtp_settings_come_complete():
    with pytest.raises(ValueError, match="NAHBAR_SMTP_FROM must be set with NAHBAR_SMTP_HOST"):
        Settings(smtp_host="mail.example.org")
    with pytest.raises(ValueError, match="NAHBAR_SMTP_USERNAME and NAHBAR_SMTP_PASSWORD go together"):
        Settings(smtp_host="mail.example.org", smtp_from="a@example.org", smtp_username="alerts")
    assert not Settings().smtp_enabled


def test_a_gateway_alert_reaches_the_webhooks_that_asked_for_it_and_a_budget_alert_does_not(
    database_url, session, clock: Clock, runtime_for
):
    """The alert hooks are wired to the organisation's webhooks: gateway trouble as
    `gateway.needs_attention`; a campaign's spent budget is left to the impact fold's own event."""
    world = build(session, clock())
    session.add(
        WebhookEndpoint(
            organisation_id=world.org_id,
            url="https://hooks.example.org/nahbar",
            event_types=["gateway.needs_attention", "campaign.budget_exhausted"],
            secret_sealed=KeySealer(TEST_SECRET).seal(b"whsec_x", b"unused"),
        )
    )
    session.commit()
    runtime = runtime_for(Settings(environment="test", database_url=database_url, secret_key=TEST_SECRET))

    beat(session, world.other_gateway_id, clock.advance(31 * 60))
    run_alert_job(runtime)

    session.expire_all()
    messages = session.scalars(select(WebhookMessage)).all()
    assert [m.event_type for m in messages] == ["gateway.needs_attention"]
    assert json.loads(messages[0].payload)["data"]["condition"] == "gateway_silent"
    assert alert_service.to_webhooks(session, world.org_id, "alert.budget_exhausted", {}) == 0
