"""A scan that cannot run says so: `scan` and `calibrate` name the cause and exit 1, the scanner keeps a
state and an error kind, and the heartbeat carries them until the admin API shows `scanner_failing`.

BlueZ is dbusmock's bluez5 on a private system bus (tests/bluez.py): the adapter missing, switched off, or
bluetoothd gone are what a real one shows over D-Bus. The commands run through their Typer entry point.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from beacon_agent.agent import Agent
from beacon_agent.bluez_check import classify, scan_preflight
from beacon_agent.cli import app
from beacon_agent.config import AgentSettings
from beacon_agent.scan_view import CannotScan, run_scan
from beacon_agent.scanner import Scanner
from server.app import create_app
from server.core.config import Settings
from tests.admin_world import API, add_user, signed_in
from tests.bluez import MockBlueZ, bluez_fixture, wait_until  # noqa: F401
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

pytestmark = [pytest.mark.dbus, pytest.mark.timeout(60)]

ACTIVE_ONLY = pytest.mark.parametrize("bluez", [{"enable_monitor_api": False}], indirect=True, ids=["active"])


def agent_cli(tmp_path: Path, *args: str, path: str | None = None):
    """Run `beacon-agent ARGS` with no config file of the machine's; answers Click's result."""
    env = {"BEACON_AGENT_CONFIG": str(tmp_path / "absent.toml"), "BEACON_AGENT_STATE_DIR": str(tmp_path)}
    if path is not None:
        env["PATH"] = path
    return CliRunner().invoke(app, list(args), env=env)


def installed_bluez(tmp_path: Path) -> str:
    """A PATH whose bluetoothctl prints a version, as on a Pi with the bluez package."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "bluetoothctl"
    tool.write_text("#!/bin/sh\necho 'bluetoothctl: 5.66'\n")
    tool.chmod(0o755)
    return str(bin_dir)


# --- scan and calibrate on the command line ----------------------------------------------------------


def test_scan_without_the_adapter_says_so_and_fails(bluez: MockBlueZ, tmp_path: Path):
    result = agent_cli(tmp_path, "scan", "--seconds", "3", "--adapter", "hci1")
    assert result.exit_code == 1, result.output
    assert "scan failed: BlueZ has no adapter hci1, only hci0" in result.stderr
    assert "bluetoothctl list" in result.stderr
    assert "BEACON_AGENT_ADAPTER=hci0" in result.stderr
    assert "adverts" not in result.stdout
    assert not bluez.method_calls("RegisterMonitor"), "no scan was started on the adapter that is there"


def test_calibrate_without_the_adapter_blames_the_adapter_not_the_phone(bluez: MockBlueZ, tmp_path: Path):
    result = agent_cli(tmp_path, "calibrate", "--seconds", "5", "--adapter", "hci1")
    assert result.exit_code == 1, result.output
    assert "calibration failed: the scan cannot run: BlueZ has no adapter hci1, only hci0" in result.stderr
    assert "bluetoothctl list" in result.stderr
    assert "BEACON_AGENT_ADAPTER" in result.stderr
    assert "Eddystone-EID" not in result.output
    assert "phone" not in result.output
    assert "measuring" not in result.output


def test_the_adapter_from_the_settings_is_the_one_checked(bluez: MockBlueZ, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BEACON_AGENT_ADAPTER", "hci7")
    result = agent_cli(tmp_path, "scan", "--seconds", "3")
    assert result.exit_code == 1, result.output
    assert "BlueZ has no adapter hci7, only hci0" in result.stderr


@pytest.mark.parametrize("command", [["scan", "--seconds", "3"], ["calibrate", "--seconds", "5"]])
def test_bluetoothd_not_running(bluez: MockBlueZ, tmp_path: Path, command: list[str]):
    bluez.stop_bluez()
    result = agent_cli(tmp_path, *command, path=installed_bluez(tmp_path))
    assert result.exit_code == 1, result.output
    assert "BlueZ (bluetoothd) is not running" in result.stderr
    assert "fix: Start it: `sudo systemctl enable --now bluetooth`" in result.stderr
    assert "adverts" not in result.stdout


def test_scan_on_a_powered_off_adapter(bluez: MockBlueZ, tmp_path: Path):
    bluez.set_powered(False)
    result = agent_cli(tmp_path, "scan", "--seconds", "3")
    assert result.exit_code == 1, result.output
    assert "scan failed: hci0 is present but powered off" in result.stderr
    assert "bluetoothctl power on" in result.stderr


def test_no_system_bus_at_all(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    result = agent_cli(tmp_path, "scan", "--seconds", "3")
    assert result.exit_code == 1, result.output
    assert "scan failed: cannot reach the system bus" in result.stderr


async def test_bluez_not_installed(bluez: MockBlueZ, tmp_path: Path):
    bluez.stop_bluez()
    problem = await scan_preflight("hci0", version_commands=[[str(tmp_path / "no-bluetoothd"), "--version"]])
    assert problem is not None
    assert problem.detail == "BlueZ is not installed (no bluetoothd)"
    assert problem.fix == "Install it: `sudo apt install bluez && sudo systemctl enable --now bluetooth`."


@ACTIVE_ONLY
async def test_a_scan_that_keeps_failing_to_start_gives_up_and_says_what_bluez_said(bluez: MockBlueZ):
    bluez.fail_next_start_discovery_with_in_progress(times=100)  # another program holds discovery
    out = io.StringIO()
    with pytest.raises(CannotScan) as failed:
        await asyncio.wait_for(run_scan("hci0", 30.0, out), 20)
    assert "the scan failed to start 3 times in a row" in failed.value.check.detail
    assert "org.bluez.Error.InProgress" in failed.value.check.detail
    assert "bluetoothctl scan on" in (failed.value.check.fix or "")
    assert "scanner: not scanning" in out.getvalue()
    assert "adverts" not in out.getvalue()


# --- the scanner's own account of its failures -------------------------------------------------------


class Nothing:
    def __call__(self, *_args: object) -> None:
        raise AssertionError("nothing can be heard on a missing adapter")


async def test_the_scanner_counts_failures_in_a_row_and_names_their_kind(bluez: MockBlueZ):
    scanner = Scanner(Nothing(), adapter="hci1", backoff_initial_s=0.01, backoff_max_s=0.05)
    assert scanner.stats().state == "starting"
    stop = asyncio.Event()
    task = asyncio.create_task(scanner.run(stop))
    await wait_until(lambda: scanner.stats().failures >= 4, 10, "four failed starts")
    stats = scanner.stats()
    assert (stats.state, stats.error_kind, stats.running) == ("failing", "adapter_missing", False)
    assert "adapter 'hci1' not found" in (stats.last_error or "")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert scanner.stats().state == "stopped"


async def test_bluetoothd_gone_is_its_own_kind(bluez: MockBlueZ):
    bluez.stop_bluez()
    scanner = Scanner(Nothing(), adapter="hci0", backoff_initial_s=0.01, backoff_max_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scanner.run(stop))
    await wait_until(lambda: scanner.stats().failures >= 1, 10, "a failed start")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert scanner.stats().error_kind == "bluez_not_running"


def test_errors_are_sorted_by_what_they_mean():
    from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakDBusError

    assert classify(BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", [])) == "permission_denied"
    assert classify(BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"])) == "adapter_off"
    assert classify(BleakDBusError("org.bluez.Error.InProgress", [])) == "busy"
    off = BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF)
    assert classify(off) == "adapter_off"
    assert classify(FileNotFoundError(2, "No such file or directory")) == "dbus_unavailable"
    assert classify(TimeoutError()) == "timeout"
    assert classify(RuntimeError("odd")) == "other"


# --- the heartbeat carries it to the admin API -------------------------------------------------------


@pytest.mark.slow
async def test_a_gateway_whose_scanner_keeps_failing_is_shown_as_scanner_failing(
    bluez: MockBlueZ, settings: Settings, session: Session, clock: Clock, tmp_path: Path
):
    charity = make_charity(session, clock())
    admin = signed_in(session, add_user(session, "ops@example.org", operator=True), clock())
    session.commit()
    with LiveServer(create_app(settings, clock=clock)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            enrolled = await client.post("/gateway/v1/enroll", json={"code": charity.enrolment_code})
            gateway_id = enrolled.json()["gateway_id"]
            agent = Agent(
                AgentSettings(server_url=server.url, state_dir=tmp_path / "agent", adapter="hci1"),
                client,
                enrolled.json()["token"],
                source=lambda agent: Scanner(
                    agent.on_advertisement, adapter="hci1", backoff_initial_s=0.01, backoff_max_s=0.05
                ),
            )
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            scanner = agent.source
            assert isinstance(scanner, Scanner)
            await wait_until(lambda: scanner.stats().failures >= 3, 10, "three failed starts")
            await agent.control.send_heartbeat(agent.heartbeat())
            shown = (await client.get(f"{API}/gateways/{gateway_id}", headers=admin)).json()
            stop.set()
            await asyncio.wait_for(running, 15)
    assert shown["health"] == "scanner_failing"
    beat = shown["last_heartbeat"]
    assert (beat["scanner_state"], beat["scanner_error"]) == ("failing", "adapter_missing")
    assert beat["scanner_failures"] >= 3
