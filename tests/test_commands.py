"""Every `nahbar` and `beacon-agent` subcommand, run as a new user runs it: the installed console script in a
subprocess, against a freshly migrated database of each kind, a real server, or BlueZ faked on D-Bus.

COVERED lists the subcommands this module runs and the tests that run them. The first test compares it with
the subcommands the typer apps define and those README.md and firmware_notes/ show, so a new subcommand (or
a documented one) that no test here runs fails the suite.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from uuid import UUID

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.core.config import Settings
from server.core.migrate import current_revision, head_revision
from server.sites.models import Gateway
from server.tenancy.models import AdminUser
from tests.bluez import MockBlueZ, bluez_fixture, eddystone_eid, ibeacon  # noqa: F401
from tests.conftest import TEST_SECRET, Clock, LiveServer
from tests.processes import Background, clean_env, free_port, run
from tests.world import event, make_charity, opt_in

ROOT: Final = Path(__file__).resolve().parent.parent
PASSWORD: Final = "a passphrase long enough"
DOOR: Final = UUID("f7826da6-4fa2-4e98-8024-bc5b71e0893e")
PHONE_EID: Final = bytes.fromhex("a1b2c3d4e5f60718")

# Each subcommand, and the tests below that run it as a subprocess.
COVERED: Final = {
    "nahbar migrate": ("test_migrate_brings_a_new_database_to_the_newest_schema", "test_an_operator_journey"),
    "nahbar create-admin": (
        "test_an_operator_journey",
        "test_create_admin_refuses",
        "test_create_admin_asks_at_a_terminal",
    ),
    "nahbar serve": ("test_an_operator_journey",),
    "nahbar gateway-code": ("test_an_operator_journey", "test_gateway_code_for_a_site_that_does_not_exist"),
    "nahbar demo": ("test_demo_serves_the_street_and_stops_on_sigterm",),
    "nahbar purge": ("test_purge_rolls_up_and_deletes_old_sightings",),
    "nahbar simulate": (
        "test_simulate_replays_a_proposal",
        "test_simulate_points_at_what_is_wrong_in_the_file",
    ),
    "beacon-agent enroll": ("test_an_operator_journey", "test_doctor_says_what_is_missing_until_enrolled"),
    "beacon-agent doctor": ("test_doctor_says_what_is_missing_until_enrolled",),
    "beacon-agent run": ("test_run_tells_systemd_it_is_ready_heartbeats_and_stops_on_sigterm",),
    "beacon-agent scan": ("test_scan_shows_the_beacons_in_the_air_until_ctrl_c",),
    "beacon-agent calibrate": ("test_calibrate_measures_the_phone_held_at_one_metre",),
}


# --- which subcommands there are ---------------------------------------------------------------------


def defined_subcommands() -> set[str]:
    from beacon_agent.cli import app as agent_app
    from server.cli import app as server_app

    defined = set()
    for program, app in (("nahbar", server_app), ("beacon-agent", agent_app)):
        group = typer.main.get_command(app)
        assert isinstance(group, typer.core.TyperGroup)
        defined |= {f"{program} {name}" for name in group.commands}
    return defined


_FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_INLINE = re.compile(r"`([^`]+)`")
_SUBCOMMAND = re.compile(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*")


def _code_in(path: Path) -> list[str]:
    """The command lines a document shows: its code blocks and inline code; a unit file is all code."""
    text = path.read_text()
    if path.suffix != ".md":
        return text.splitlines()
    blocks = [line for block in _FENCED.findall(text) for line in block.splitlines()]
    return blocks + _INLINE.findall(_FENCED.sub("", text))


def documented_subcommands() -> set[str]:
    """`nahbar x` and `beacon-agent x` (or `beacon-agent a|b`) as README.md, firmware_notes/, the operator's
    guide (docs/deployment.md) and the units in deploy/ show them."""
    found = set()
    guides = [ROOT / "README.md", ROOT / "docs" / "deployment.md"]
    units = sorted(path for path in (ROOT / "deploy").iterdir() if path.suffix in (".service", ".timer"))
    for path in [*guides, *sorted((ROOT / "firmware_notes").iterdir()), *units]:
        for code in _code_in(path):
            if code.lstrip().startswith("#"):
                continue  # a comment: "readable by the nahbar group" names no command
            words = code.split()
            for at, word in enumerate(words[:-1]):
                word = word.removeprefix("ExecStart=")
                # A program by its name or its path in a bin folder (/var/lib/nahbar is a folder).
                program = word.rsplit("/", 1)[-1] if "/" not in word or "/bin/" in word else ""
                # `sudo -u beacon-agent beacon-agent scan`: the first is the user, the second the program.
                if program in ("nahbar", "beacon-agent") and (
                    at == 0 or words[at - 1] not in ("-u", "-o", "-g")
                ):
                    after = words[at + 1 :]
                    if after[:1] == ["--env-file"]:  # `nahbar --env-file FILE migrate`
                        after = after[2:]
                    if after and _SUBCOMMAND.fullmatch(after[0]):
                        found |= {f"{program} {sub}" for sub in after[0].split("|")}
    return found


def test_every_subcommand_defined_or_documented_is_run_here():
    defined, documented, covered = defined_subcommands(), documented_subcommands(), set(COVERED)
    # The parser must find what the docs plainly show, or an empty result would pass.
    assert {
        "nahbar gateway-code",
        "nahbar migrate",
        "nahbar create-admin",
        "nahbar serve",
        "beacon-agent enroll",
        "beacon-agent doctor",
    } <= documented
    assert documented - defined == set(), "the docs show subcommands that do not exist"
    assert defined - covered == set(), (
        "subcommands no test in tests/test_commands.py runs: add one to COVERED"
    )
    assert covered - defined == set(), "COVERED lists subcommands that no longer exist"
    tests = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    for command, names in COVERED.items():
        assert set(names) <= tests, f"{command}: COVERED names tests that are not in this module"


# --- helpers -----------------------------------------------------------------------------------------


def _poll(condition: Callable[[], object], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _server_env(database_url: str, **more: str) -> dict[str, str]:
    return clean_env(NAHBAR_DATABASE_URL=database_url, NAHBAR_SECRET_KEY=TEST_SECRET, **more)


def _agent_config(tmp_path: Path, server_url: str) -> dict[str, str]:
    """/etc/beacon-agent/agent.toml as the gateway guide writes it, in a directory of the test's own."""
    state = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(f'server_url = "{server_url}"\nstate_dir = "{state}"\nadapter = "hci0"\n')
    return {"BEACON_AGENT_CONFIG": str(config)}


def _stopped_cleanly(status: int, output: str) -> None:
    # uvicorn ends by re-raising the SIGTERM it handled once shut down; systemd counts that as a clean stop.
    assert status in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output


# --- the server: migrate, create-admin, serve, gateway-code, and enroll on the Pi ---------------------


def test_migrate_brings_a_new_database_to_the_newest_schema(empty_database_url, tmp_path, engine_of):
    env = _server_env(empty_database_url)
    for _ in range(2):  # and a second time changes nothing
        migrated = run(["nahbar", "migrate"], env=env, cwd=tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stdout.startswith("database at head: ")
    assert current_revision(engine_of(empty_database_url)) == head_revision()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_operator_journey(empty_database_url, tmp_path):
    """README's other commands in order: migrate, create the operator, serve, set up a charity's site,
    make a gateway code, and run the printed command on the Pi."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _server_env(empty_database_url, NAHBAR_PUBLIC_URL=base)
    assert run(["nahbar", "migrate"], env=env, cwd=tmp_path).returncode == 0
    created = run(
        ["nahbar", "create-admin", "--email", "Operator@Example.org", "--password-stdin"],
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("operator operator@example.org created\n")
    assert PASSWORD not in created.stdout + created.stderr

    with Background(
        ["nahbar", "serve", "--port", str(port)], env=env, cwd=tmp_path, log=tmp_path / "s.log"
    ) as serve:
        serve.wait_until_ready(base)
        with httpx.Client(base_url=f"{base}/admin/api/v1") as admin:
            login = admin.post("/auth/login", json={"email": "operator@example.org", "password": PASSWORD})
            assert login.status_code == 200, login.text
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            org = admin.post("/organisations", json={"slug": "hospiz", "name": "Hospiz e.V."}, headers=csrf)
            assert org.status_code == 201, org.text
            body = {"organisation_id": org.json()["id"], "name": "Front door", "timezone": "Europe/Berlin"}
            site = admin.post("/sites", json=body, headers=csrf)
            assert site.status_code == 201, site.text
        site_id = site.json()["id"]

        code = run(
            ["nahbar", "gateway-code", "--site-id", str(site_id), "--name", "front window"],
            env=env,
            cwd=tmp_path,
        )
        assert code.returncode == 0, code.stderr
        assert code.stdout.startswith("gateway ")
        assert " at Front door; code valid until " in code.stdout
        [printed] = [line for line in code.stdout.splitlines() if line.startswith("on the Pi: ")]
        on_the_pi = shlex.split(printed.removeprefix("on the Pi: "))
        assert on_the_pi[:4] == ["beacon-agent", "enroll", "--server", base], printed

        pi = clean_env(**_agent_config(tmp_path, base))
        wrong = run(
            ["beacon-agent", "enroll", "--server", base, "--code", "AAAA-BBBB-CCCC"], env=pi, cwd=tmp_path
        )
        assert wrong.returncode == 1
        assert wrong.stderr.startswith("enrolment failed: ")
        enrolled = run(on_the_pi, env=pi, cwd=tmp_path)
        assert enrolled.returncode == 0, enrolled.stderr
        assert f"at site {site_id}; token in {tmp_path / 'state' / 'token'}" in enrolled.stdout
        token_file = tmp_path / "state" / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        config = httpx.get(
            f"{base}/gateway/v1/config", headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}
        )
        assert config.status_code == 200, config.text
        _stopped_cleanly(serve.stop(), serve.output())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gateway_code_for_a_site_that_does_not_exist(database_url, tmp_path):
    answer = run(["nahbar", "gateway-code", "--site-id", "999"], env=_server_env(database_url), cwd=tmp_path)
    assert answer.returncode == 2
    assert "no site with id 999" in answer.stderr
    assert "Traceback" not in answer.stderr


# --- create-admin, for people and for provisioning scripts --------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        (["--email", "op@example.org", "--password-stdin"], "too short\n", "at least 12 characters"),
        (["--email", "op@example.org", "--password-stdin"], "", "standard input held no password line"),
        (["--password-stdin"], PASSWORD + "\n", "Invalid value for --email"),
    ],
    ids=["short", "no-line", "no-email"],
)
def test_create_admin_refuses(database_url, tmp_path, session: Session, argv, stdin, says):
    answer = run(["nahbar", "create-admin", *argv], env=_server_env(database_url), cwd=tmp_path, stdin=stdin)
    assert answer.returncode == 2
    assert says in answer.stderr
    assert session.scalar(select(AdminUser)) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_create_admin_refuses_an_existing_email(database_url, tmp_path):
    env = _server_env(database_url)
    argv = ["nahbar", "create-admin", "--email", "op@example.org", "--password-stdin"]
    assert run(argv, env=env, cwd=tmp_path, stdin=PASSWORD + "\n").returncode == 0
    again = run(argv, env=env, cwd=tmp_path, stdin=PASSWORD + "\n")
    assert again.returncode == 2
    assert "op@example.org exists already" in again.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_create_admin_asks_at_a_terminal(database_url, tmp_path, settings: Settings):
    """Without options it asks for the e-mail and, twice and unechoed, the password, at a real terminal."""
    import pty
    import subprocess

    from tests.processes import BIN

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "nahbar"), "create-admin"],
        env=_server_env(database_url),
        cwd=tmp_path,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""

    def answer(prompt: bytes, line: str) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while prompt not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            seen += os.read(leader, 1024)
        seen = seen.split(prompt, 1)[1]
        os.write(leader, line.encode() + b"\n")

    try:
        answer(b"Email: ", "desk@example.org")
        answer(b"characters): ", PASSWORD)
        answer(b"Repeat: ", PASSWORD)
        assert process.wait(60) == 0
        while True:
            try:
                chunk = os.read(leader, 1024)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert b"operator desk@example.org created" in seen
    assert PASSWORD.encode() not in seen  # not echoed
    with TestClient(create_app(settings)) as client:
        login = {"email": "desk@example.org", "password": PASSWORD}
        assert client.post("/admin/api/v1/auth/login", json=login).status_code == 200


# --- demo, purge, simulate ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_demo_serves_the_street_and_stops_on_sigterm(database_url, tmp_path):
    port = free_port()
    env = clean_env(NAHBAR_DATABASE_URL=database_url)  # no secret key or anything else: the demo needs none
    argv = ["nahbar", "demo", "--port", str(port), "--phones", "4"]
    with Background(argv, env=env, cwd=tmp_path, log=tmp_path / "demo.log") as demo:
        demo.wait_for_output(f"serving on http://127.0.0.1:{port}")
        demo.wait_until_ready(f"http://127.0.0.1:{port}")
        demo.wait_for_output("server decided ", within_s=90)
        status = demo.stop()
    assert status == 0, demo.output()
    assert demo.output().rstrip().endswith("demo stopped")
    assert "Traceback" not in demo.output()


def test_purge_rolls_up_and_deletes_old_sightings(settings: Settings, session: Session, tmp_path):
    three_days_ago = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    with TestClient(create_app(settings, clock=three_days_ago)) as client:
        charity = make_charity(session, three_days_ago())
        answer = client.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})
        gateway = {"Authorization": f"Bearer {answer.json()['token']}"}
        phone = opt_in(client)
        sent = client.post(
            "/gateway/v1/events",
            json={"events": [event("enter-001", phone, three_days_ago())]},
            headers=gateway,
        )
        assert sent.status_code == 200, sent.text
    env = _server_env(settings.database_url, NAHBAR_RETENTION_DAYS="1")
    purged = run(["nahbar", "purge"], env=env, cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == (
        "aggregate rows written: 1; deleted: 1 proximity events, 1 visits, 1 decisions\n"
    )


def test_simulate_replays_a_proposal(database_url, tmp_path):
    proposal = tmp_path / "stricter.json"
    proposal.write_text(json.dumps({"policy": {"max_per_day": 1}}))
    argv = ["nahbar", "simulate", "--days", "7", "--proposal", str(proposal)]
    answer = run(argv, env=_server_env(database_url), cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert ", 0 events" in answer.stdout
    assert "replaying (proposed)" in answer.stdout


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "nope.json: cannot read the proposal: No such file or directory"),
        (
            '{\n  "policy": {"max_per_day": 1,}\n}\n',
            "nope.json:2:31: not valid JSON: Expecting property name",
        ),
        (
            '{\n  "policy": {\n    "max_per_dya": 1\n  }\n}\n',
            "nope.json:3:5: policy.max_per_dya: unknown field",
        ),
        (
            '{"campaigns": {"7": {"status": "gone"}}}',
            "nope.json:1:22: campaigns.7.status: String should match",
        ),
        ("[1, 2]", "nope.json:1:1: the proposal must be a JSON object"),
    ],
    ids=["missing", "malformed", "unknown-key", "bad-value", "not-an-object"],
)
def test_simulate_points_at_what_is_wrong_in_the_file(tmp_path, text, says):
    if text is not None:
        (tmp_path / "nope.json").write_text(text)
    env = _server_env(f"sqlite:///{tmp_path / 'never-opened.db'}")
    answer = run(["nahbar", "simulate", "--proposal", "nope.json"], env=env, cwd=tmp_path)
    assert answer.returncode == 2
    assert answer.stdout == ""
    assert answer.stderr.startswith(f"nahbar simulate: {says}"), answer.stderr
    assert answer.stderr.count("\n") == 1, answer.stderr  # one line, no traceback
    assert not (tmp_path / "never-opened.db").exists()


# --- the gateway: enroll, doctor, run, scan, calibrate ----------------------------------------------


@dataclass(frozen=True)
class Charity:
    url: str
    code: str
    gateway_id: int


@pytest.fixture
def charity_server(settings: Settings, session: Session) -> Iterator[Charity]:
    """A real server on a loopback port (real clock), with a site whose gateway has an enrolment code."""
    charity = make_charity(session, datetime.now(UTC))
    gateway_id = session.scalar(select(Gateway.id))
    assert gateway_id is not None
    with LiveServer(create_app(settings)) as server:
        yield Charity(server.url, charity.enrolment_code, gateway_id)


@pytest.fixture
def engine_of() -> Iterator[Callable[[str], Engine]]:
    from server.core.db import make_engine

    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engines.append(make_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def _timedated() -> Callable[[], None]:
    """systemd-timedated on the test's system bus, saying the clock is synchronised; returns its stop."""
    import dbusmock

    mock = dbusmock.SpawnedMock.spawn_with_template(
        "timedated", {"NTP": True}, bustype=dbusmock.BusType.SYSTEM, stdout=None, stderr=None
    )

    def stop() -> None:
        mock.process.terminate()
        mock.process.wait(10)

    return stop


def _failing(doctor_output: str) -> list[str]:
    lines = doctor_output.splitlines()
    for at, line in enumerate(lines):
        if line.startswith("FAIL"):
            assert lines[at + 1].lstrip().startswith("fix: "), doctor_output
    return [line.split("  ")[1].strip() for line in lines if line.startswith("FAIL")]


@pytest.mark.dbus
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_doctor_says_what_is_missing_until_enrolled(bluez: MockBlueZ, charity_server: Charity, tmp_path):
    stop_timedated = _timedated()
    try:
        bin_dir = tmp_path / "bin"  # BlueZ's own version command, as Raspberry Pi OS Bookworm answers it
        bin_dir.mkdir()
        (bin_dir / "bluetoothd").write_text("#!/bin/sh\necho 5.66\n")
        (bin_dir / "bluetoothd").chmod(0o755)
        env = clean_env(
            **_agent_config(tmp_path, charity_server.url),
            DBUS_SYSTEM_BUS_ADDRESS=bluez.address,
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        )
        before = run(["beacon-agent", "doctor"], env=env, cwd=tmp_path)
        assert before.returncode == 1, before.stdout + before.stderr
        assert _failing(before.stdout) == ["token file", "token accepted"], before.stdout
        assert before.stdout.rstrip().endswith("2 of 9 checks failed")

        argv = ["beacon-agent", "enroll", "--server", charity_server.url, "--code", charity_server.code]
        enrolled = run(argv, env=env, cwd=tmp_path)
        assert enrolled.returncode == 0, enrolled.stderr

        after = run(["beacon-agent", "doctor"], env=env, cwd=tmp_path)
        assert after.returncode == 0, after.stdout + after.stderr
        assert _failing(after.stdout) == []
        assert after.stdout.rstrip().endswith("all checks passed")
    finally:
        stop_timedated()


@pytest.mark.dbus
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_tells_systemd_it_is_ready_heartbeats_and_stops_on_sigterm(
    bluez: MockBlueZ, charity_server: Charity, engine: Engine, tmp_path
):
    env = clean_env(**_agent_config(tmp_path, charity_server.url), DBUS_SYSTEM_BUS_ADDRESS=bluez.address)
    argv = ["beacon-agent", "enroll", "--server", charity_server.url, "--code", charity_server.code]
    assert run(argv, env=env, cwd=tmp_path).returncode == 0
    short = Path(tempfile.mkdtemp(prefix="nahbar-notify-"))  # unix socket paths are limited to 108 bytes
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(short / "notify"))
    systemd.settimeout(0.2)
    said: list[str] = []

    def hear(state: str, within_s: float = 30) -> None:
        deadline = time.monotonic() + within_s
        while not any(state in message.split("\n") for message in said):
            assert time.monotonic() < deadline, f"the agent never said {state}: {said}"
            try:
                said.append(systemd.recv(4096).decode())
            except TimeoutError:
                pass

    def heartbeat() -> object:
        with Session(engine) as session:
            gateway = session.get(Gateway, charity_server.gateway_id)
            return gateway is not None and gateway.last_heartbeat

    try:
        env["NOTIFY_SOCKET"] = str(short / "notify")
        with Background(["beacon-agent", "run"], env=env, cwd=tmp_path, log=tmp_path / "agent.log") as agent:
            hear("READY=1")
            agent.wait_for_output(f"running on hci0, delivering to {charity_server.url}")
            _poll(bluez.scanning, 30, "the agent to scan")
            _poll(heartbeat, 30, "the agent's heartbeat to reach the server")
            status = agent.stop()
            hear("STOPPING=1", within_s=5)
    finally:
        systemd.close()
        (short / "notify").unlink()
        short.rmdir()
    assert status == 0, agent.output()
    assert "Traceback" not in agent.output()


@pytest.mark.dbus
@pytest.mark.timeout(90)
def test_scan_shows_the_beacons_in_the_air_until_ctrl_c(bluez: MockBlueZ, tmp_path):
    env = clean_env(**_agent_config(tmp_path, "http://127.0.0.1:9"), DBUS_SYSTEM_BUS_ADDRESS=bluez.address)
    with Background(["beacon-agent", "scan"], env=env, cwd=tmp_path, log=tmp_path / "scan.log") as scan:
        _poll(bluez.scanning, 30, "scan to start")
        bluez.add_device("D0:0D:AB:CD:EF:01", -61, manufacturer_data=ibeacon(DOOR, 1, 2))
        bluez.add_device("5E:11:0A:00:00:01", -55, service_data=eddystone_eid(PHONE_EID))
        scan.wait_for_output(f"{DOOR}/1/2")
        scan.wait_for_output(PHONE_EID.hex())
        status = scan.stop(signal.SIGINT)
    output = scan.output()
    assert status == 0, output
    rows = output.splitlines()
    assert any(row.startswith("ibeacon") and row.endswith(f"{DOOR}/1/2") for row in rows), output
    assert any(row.startswith("eddystone_eid") and row.endswith(PHONE_EID.hex()) for row in rows), output
    assert "D0:0D" not in output  # never an address
    assert "5E:11" not in output
    assert "Traceback" not in output


@pytest.mark.dbus
@pytest.mark.timeout(90)
def test_calibrate_measures_the_phone_held_at_one_metre(bluez: MockBlueZ, tmp_path):
    env = clean_env(**_agent_config(tmp_path, "http://127.0.0.1:9"), DBUS_SYSTEM_BUS_ADDRESS=bluez.address)
    argv = ["beacon-agent", "calibrate", "--seconds", "8"]
    with Background(argv, env=env, cwd=tmp_path, log=tmp_path / "calibrate.log") as calibrate:
        _poll(bluez.scanning, 30, "calibrate to scan")
        path = bluez.add_device("5E:11:0A:00:00:01", -60, service_data=eddystone_eid(PHONE_EID))
        readings = 0
        while calibrate.process.poll() is None and readings < 2000:
            bluez.set_rssi(path, (-59, -60, -61, -60)[readings % 4])  # a phone held still: a steady signal
            readings += 1
            time.sleep(0.02)
        status = calibrate.process.wait(30)
    output = calibrate.output()
    assert status == 0, output
    assert f"eddystone_eid:{PHONE_EID.hex()}: power at 1 m = -60 dBm" in output
