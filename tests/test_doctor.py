"""`beacon-agent doctor` against its real edges.

A private dbus-daemon with python-dbusmock's BlueZ and timedated, an HTTP server faked with
httpx.MockTransport, real version commands and real files in a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from beacon_agent.config import AgentSettings
from beacon_agent.doctor import Check, bluez_version, render, run_checks
from beacon_agent.enrol import write_secret
from tests.conftest import require_part

NOW = datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC)
TOKEN = "ngw_test-token"
SERVER = "http://nahbar.test"
MONITOR_MANAGER = "org.bluez.AdvertisementMonitorManager1"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={socket_dir}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    {extra}
  </policy>
</busconfig>
"""
# What a system without the bluetooth group's policy does to a user: org.bluez will not list its objects.
_DENY_BLUEZ_OBJECTS = (
    '<deny send_destination="org.bluez" send_interface="org.freedesktop.DBus.ObjectManager"/>'
)


# --- edges -------------------------------------------------------------------------------------------


class SystemBus:
    """A private dbus-daemon announced as the system bus, with dbusmock services spawned on it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, extra_policy: str = "") -> None:
        require_part(
            shutil.which("dbus-daemon") is not None and importlib.util.find_spec("dbusmock") is not None,
            "dbus-daemon and python-dbusmock",
        )
        self._dir = Path(tempfile.mkdtemp(prefix="nahbar-dbus-"))  # short: socket paths are limited
        config = self._dir / "system.conf"
        config.write_text(_BUS_CONFIG.format(socket_dir=self._dir, extra=extra_policy))
        self._daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().strip()
        assert self.address, "dbus-daemon printed no address"
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", self.address)
        self._mocks: list[subprocess.Popen[bytes]] = []

    def spawn(self, template: str, parameters: dict[str, object] | None = None):
        import dbusmock

        mock = dbusmock.SpawnedMock.spawn_with_template(
            template, parameters or {}, bustype=dbusmock.BusType.SYSTEM, stdout=None, stderr=None
        )
        self._mocks.append(mock.process)
        return mock.obj

    def close(self) -> None:
        for process in [*self._mocks, self._daemon]:
            process.terminate()
            process.wait(timeout=10)
        if self._daemon.stdout is not None:
            self._daemon.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def system_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SystemBus]]:
    buses: list[SystemBus] = []

    def start(extra_policy: str = "") -> SystemBus:
        bus = SystemBus(monkeypatch, extra_policy)
        buses.append(bus)
        return bus

    yield start
    for bus in buses:
        bus.close()


def add_adapter(bluez, name: str = "hci0", *, powered: bool = True) -> None:
    import dbus

    path = bluez.AddAdapter(name, "front window", dbus_interface="org.bluez.Mock")
    if not powered:
        bus = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        adapter = bus.get_object("org.bluez", path)
        adapter.Set("org.bluez.Adapter1", "Powered", False, dbus_interface="org.freedesktop.DBus.Properties")
        bus.close()


@dataclass
class Server:
    """What the fake Nahbar server answers, and the requests it saw."""

    clock_offset: timedelta = timedelta(0)
    healthz_status: int = 200
    config_status: int | None = None  # None: 200 for the right token, else 401
    down: bool = False

    def __post_init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        headers = {"Date": format_datetime(NOW + self.clock_offset, usegmt=True)}
        if request.url.path == "/healthz":
            return httpx.Response(self.healthz_status, headers=headers, json={"status": "ok"})
        if request.url.path == "/gateway/v1/config":
            status = self.config_status
            if status is None:
                status = 200 if request.headers.get("authorization") == f"Bearer {TOKEN}" else 401
            return httpx.Response(status, headers=headers, json={})
        return httpx.Response(404, headers=headers)


@dataclass
class Host:
    """The gateway's files: settings, token, BlueZ's main.conf, a /proc and BlueZ's version command."""

    root: Path
    bluez: str = "5.66"
    main_conf_text: str = "[General]\n#Experimental = false\n"
    bluetoothd_argv: tuple[str, ...] | None = ("/usr/libexec/bluetooth/bluetoothd",)  # None: not running
    token_mode: int | None = 0o600  # None: not enrolled

    def settings(self) -> AgentSettings:
        state = self.root / "state"
        if self.token_mode is not None:
            write_secret(state / "token", TOKEN)
            (state / "token").chmod(self.token_mode)
        return AgentSettings(server_url=SERVER, state_dir=state, adapter="hci0")

    def edges(self) -> dict[str, object]:
        version = self.root / "bin" / "bluetoothd"
        version.parent.mkdir(exist_ok=True)
        version.write_text(f"#!/bin/sh\necho {self.bluez}\n")
        version.chmod(0o755)
        main_conf = self.root / "main.conf"
        main_conf.write_text(self.main_conf_text)
        proc = self.root / "proc"
        processes = [("1", ("/sbin/init",)), ("412", self.bluetoothd_argv), ("self", ("python",))]
        for pid, argv in [(pid, argv) for pid, argv in processes if argv is not None]:
            (proc / pid).mkdir(parents=True, exist_ok=True)
            (proc / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        return {"version_commands": [[str(version), "--version"]], "main_conf": main_conf, "proc": proc}


async def doctor(host: Host, server: Server | None = None, **overrides: object) -> dict[str, Check]:
    server = server or Server()
    edges = {**host.edges(), **overrides}
    checks = await run_checks(
        host.settings(), transport=httpx.MockTransport(server.handler), now=lambda: NOW, **edges
    )
    by_name = {check.name: check for check in checks}
    assert len(by_name) == len(checks), "check names must be unique"
    for check in checks:
        assert check.ok or check.fix, f"{check.name} fails without saying how to fix it"
    return by_name


def failing(checks: dict[str, Check]) -> set[str]:
    return {name for name, check in checks.items() if not check.ok}


# --- a healthy gateway -------------------------------------------------------------------------------


@pytest.mark.dbus
async def test_a_healthy_gateway_passes_every_check(system_bus, tmp_path: Path):
    bus = system_bus()
    add_adapter(bus.spawn("bluez5"))
    bus.spawn("timedated", {"NTP": True})
    server = Server(clock_offset=timedelta(seconds=2))

    checks = await doctor(Host(tmp_path), server)

    assert failing(checks) == set(), render(list(checks.values()))
    assert list(checks) == [
        "BlueZ version",
        "D-Bus access to BlueZ",
        "adapter hci0",
        "passive scanning",
        "clock synchronised",
        "server reachable",
        "clock matches server",
        "token file",
        "token accepted",
    ]
    assert "AdvertisementMonitorManager1" in checks["passive scanning"].detail
    assert "NTPSynchronized" in checks["clock synchronised"].detail
    assert [r.url.path for r in server.requests] == ["/healthz", "/gateway/v1/config"]
    assert render(list(checks.values())).endswith("all checks passed")


# --- BlueZ over D-Bus --------------------------------------------------------------------------------


@pytest.mark.dbus
async def test_a_missing_adapter_points_to_the_one_there_is(system_bus, tmp_path: Path):
    add_adapter(system_bus().spawn("bluez5"), "hci1")
    check = (await doctor(Host(tmp_path)))["adapter hci0"]
    assert not check.ok
    assert "only hci1" in check.detail
    assert 'adapter = "hci1"' in (check.fix or "")


@pytest.mark.dbus
async def test_no_adapter_at_all(system_bus, tmp_path: Path):
    system_bus().spawn("bluez5")
    checks = await doctor(Host(tmp_path))
    assert checks["D-Bus access to BlueZ"].ok
    assert checks["D-Bus access to BlueZ"].detail == "org.bluez answered (0 adapters)"
    assert not checks["adapter hci0"].ok
    assert "rfkill unblock bluetooth" in (checks["adapter hci0"].fix or "")


@pytest.mark.dbus
async def test_a_powered_off_adapter(system_bus, tmp_path: Path):
    add_adapter(system_bus().spawn("bluez5"), powered=False)
    check = (await doctor(Host(tmp_path)))["adapter hci0"]
    assert not check.ok
    assert check.detail == "hci0 is present but powered off"
    assert "bluetoothctl power on" in (check.fix or "")


@pytest.mark.dbus
async def test_access_denied_asks_for_the_bluetooth_group(system_bus, tmp_path: Path):
    add_adapter(system_bus(_DENY_BLUEZ_OBJECTS).spawn("bluez5"))
    checks = await doctor(Host(tmp_path))
    access = checks["D-Bus access to BlueZ"]
    assert not access.ok
    assert "AccessDenied" in access.detail
    assert "usermod -aG bluetooth beacon-agent" in (access.fix or "")
    assert checks["adapter hci0"].detail == "not checked: BlueZ did not answer"


@pytest.mark.dbus
async def test_bluez_not_running(system_bus, tmp_path: Path):
    system_bus()  # a system bus, but nobody owns org.bluez
    checks = await doctor(Host(tmp_path))
    access = checks["D-Bus access to BlueZ"]
    assert not access.ok
    assert access.detail == "BlueZ (bluetoothd) is not running"
    assert "systemctl enable --now bluetooth" in (access.fix or "")
    # timedated is not there either: the server comparison decides about the clock.
    assert checks["clock synchronised"].ok


@pytest.mark.dbus
async def test_without_experimental_mode_the_fix_is_a_drop_in(system_bus, tmp_path: Path):
    add_adapter(system_bus().spawn("bluez5", {"enable_monitor_api": False}))
    check = (await doctor(Host(tmp_path)))["passive scanning"]
    assert not check.ok
    assert "falls back to active scanning" in check.detail
    assert check.fix is not None
    assert "systemctl edit bluetooth.service" in check.fix
    assert "ExecStart=/usr/libexec/bluetooth/bluetoothd --experimental" in check.fix


@pytest.mark.dbus
async def test_experimental_configured_but_not_in_effect_asks_for_a_restart(system_bus, tmp_path: Path):
    add_adapter(system_bus().spawn("bluez5", {"enable_monitor_api": False}))
    host = Host(tmp_path, main_conf_text="[General]\nName = window\nExperimental = true\n")
    check = (await doctor(host))["passive scanning"]
    assert not check.ok
    assert f"Experimental = true in {tmp_path / 'main.conf'}" in check.detail
    assert "sudo systemctl restart bluetooth" in (check.fix or "")


@pytest.mark.dbus
async def test_an_old_bluez_fails_version_and_passive_scanning(system_bus, tmp_path: Path):
    add_adapter(system_bus().spawn("bluez5", {"enable_monitor_api": False}))
    checks = await doctor(Host(tmp_path, bluez="5.55"))
    assert not checks["BlueZ version"].ok
    assert "5.55 is older than 5.56" in checks["BlueZ version"].detail
    assert "Bookworm" in (checks["passive scanning"].fix or "")


@pytest.mark.dbus
async def test_an_unsynchronised_clock(system_bus, tmp_path: Path):
    bus = system_bus()
    add_adapter(bus.spawn("bluez5"))
    bus.spawn("timedated", {"NTP": False})
    check = (await doctor(Host(tmp_path)))["clock synchronised"]
    assert not check.ok
    assert "timedatectl set-ntp true" in (check.fix or "")


# --- without any system bus: judged from files -------------------------------------------------------


async def test_no_system_bus_at_all(tmp_path: Path):
    host = Host(tmp_path, bluetoothd_argv=("/usr/sbin/bluetoothd", "-n", "-E"))
    checks = await doctor(host, bus_address=f"unix:path={tmp_path / 'no-bus'}")
    access = checks["D-Bus access to BlueZ"]
    assert not access.ok
    assert "cannot reach the system bus" in access.detail
    assert checks["adapter hci0"].detail == "not checked: BlueZ did not answer"
    # Experimental mode is still judged, from how bluetoothd was started.
    assert checks["passive scanning"].ok
    assert "started with --experimental" in checks["passive scanning"].detail


async def test_experimental_neither_in_argv_nor_main_conf(tmp_path: Path):
    host = Host(tmp_path, bluetoothd_argv=("/usr/sbin/bluetoothd", "-n"))
    check = (await doctor(host, bus_address=f"unix:path={tmp_path / 'no-bus'}"))["passive scanning"]
    assert not check.ok
    assert "ExecStart=/usr/sbin/bluetoothd --experimental" in (check.fix or "")


# --- BlueZ version commands --------------------------------------------------------------------------


def _script(path: Path, body: str) -> list[str]:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return [str(path), "--version"]


async def test_version_falls_through_to_a_working_command(tmp_path: Path):
    commands = [
        [str(tmp_path / "not-installed"), "--version"],
        _script(tmp_path / "broken", "echo 5.70; exit 1"),
        _script(tmp_path / "bluetoothctl", "echo 'bluetoothctl: 5.72'"),
    ]
    assert await bluez_version(commands) == (5, 72)


async def test_no_version_at_all_says_install_bluez(tmp_path: Path):
    checks = await doctor(
        Host(tmp_path),
        version_commands=[[str(tmp_path / "nothing"), "--version"]],
        bus_address=f"unix:path={tmp_path / 'no-bus'}",
    )
    assert not checks["BlueZ version"].ok
    assert checks["BlueZ version"].fix == (
        "Install BlueZ: `sudo apt install bluez && sudo systemctl enable --now bluetooth`."
    )


@pytest.mark.dbus
async def test_bluez_not_installed_is_said_so_not_blamed_on_experimental_mode(system_bus, tmp_path: Path):
    system_bus()  # nobody owns org.bluez, no bluetoothd process, no version command answers
    checks = await doctor(
        Host(tmp_path, bluetoothd_argv=None), version_commands=[[str(tmp_path / "nothing"), "--version"]]
    )
    access, passive = checks["D-Bus access to BlueZ"], checks["passive scanning"]
    assert access.detail == "BlueZ is not installed (no bluetoothd)"
    assert "sudo apt install bluez" in (access.fix or "")
    assert passive.detail == "not checked: BlueZ is not installed"
    assert "--experimental" not in passive.detail
    assert "sudo apt install bluez" in (passive.fix or "")


@pytest.mark.dbus
async def test_bluetoothd_installed_but_not_running(system_bus, tmp_path: Path):
    system_bus()
    checks = await doctor(Host(tmp_path, bluetoothd_argv=None))
    passive = checks["passive scanning"]
    assert passive.detail == "not checked: bluetoothd is not running"
    assert "--experimental" not in passive.detail
    assert "sudo systemctl enable --now bluetooth" in (passive.fix or "")
    assert checks["D-Bus access to BlueZ"].detail == "BlueZ (bluetoothd) is not running"


async def test_no_bus_and_no_bluetoothd(tmp_path: Path):
    checks = await doctor(
        Host(tmp_path, bluetoothd_argv=None), bus_address=f"unix:path={tmp_path / 'no-bus'}"
    )
    assert checks["passive scanning"].detail == "not checked: bluetoothd is not running"


# --- server, clock and token -------------------------------------------------------------------------


def _no_bus(tmp_path: Path) -> dict[str, object]:
    return {"bus_address": f"unix:path={tmp_path / 'no-bus'}"}


async def test_a_clock_off_by_a_minute_fails(tmp_path: Path):
    checks = await doctor(Host(tmp_path), Server(clock_offset=timedelta(seconds=60)), **_no_bus(tmp_path))
    skew = checks["clock matches server"]
    assert not skew.ok
    assert "60 s behind the server's" in skew.detail
    assert checks["server reachable"].ok


@pytest.mark.parametrize(("offset", "ok"), [(-4, True), (4, True), (-7, False), (7, False)])
async def test_skew_limit_is_five_seconds(tmp_path: Path, offset: int, ok: bool):
    checks = await doctor(Host(tmp_path), Server(clock_offset=timedelta(seconds=offset)), **_no_bus(tmp_path))
    assert checks["clock matches server"].ok is ok


async def test_an_unreachable_server(tmp_path: Path):
    checks = await doctor(Host(tmp_path), Server(down=True), **_no_bus(tmp_path))
    assert not checks["server reachable"].ok
    assert "ConnectError" in checks["server reachable"].detail
    assert "server_url" in (checks["server reachable"].fix or "")
    assert checks["clock matches server"].detail == "not checked: the server did not answer"
    assert checks["token accepted"].detail == "not checked: the server did not answer"
    assert checks["token file"].ok


async def test_an_unhealthy_server(tmp_path: Path):
    checks = await doctor(Host(tmp_path), Server(healthz_status=503), **_no_bus(tmp_path))
    assert not checks["server reachable"].ok
    assert "answered 503" in checks["server reachable"].detail


async def test_not_enrolled(tmp_path: Path):
    checks = await doctor(Host(tmp_path, token_mode=None), **_no_bus(tmp_path))
    token = checks["token file"]
    assert not token.ok
    assert "not enrolled" in token.detail
    assert f"beacon-agent enroll --server {SERVER} --code CODE" in (token.fix or "")
    assert checks["token accepted"].detail == "not checked: no token"


async def test_a_token_others_can_read(tmp_path: Path):
    checks = await doctor(Host(tmp_path, token_mode=0o644), **_no_bus(tmp_path))
    token = checks["token file"]
    assert not token.ok
    assert "mode 0644" in token.detail
    assert f"chmod 600 {tmp_path / 'state' / 'token'}" in (token.fix or "")
    assert checks["token accepted"].ok  # still worth asking the server about it


async def test_a_revoked_token_asks_to_re_enrol(tmp_path: Path):
    checks = await doctor(Host(tmp_path), Server(config_status=401), **_no_bus(tmp_path))
    accepted = checks["token accepted"]
    assert not accepted.ok
    assert "401" in accepted.detail
    assert "Re-enrol with a new code" in (accepted.fix or "")


async def test_the_token_is_sent_as_a_bearer(tmp_path: Path):
    server = Server()
    await doctor(Host(tmp_path), server, **_no_bus(tmp_path))
    config = [r for r in server.requests if r.url.path == "/gateway/v1/config"]
    assert [r.headers["authorization"] for r in config] == [f"Bearer {TOKEN}"]
    assert all("authorization" not in r.headers for r in server.requests if r.url.path == "/healthz")


async def test_a_server_without_the_config_endpoint(tmp_path: Path):
    checks = await doctor(Host(tmp_path), Server(config_status=404), **_no_bus(tmp_path))
    assert "older than this agent" in checks["token accepted"].detail


# --- rendering ---------------------------------------------------------------------------------------


def test_render_puts_the_fix_under_each_failure():
    text = render(
        [
            Check("BlueZ version", True, "5.66 (5.56 or newer)"),
            Check("token file", False, "missing", "Enrol this gateway."),
        ]
    )
    assert text.splitlines() == [
        "ok    BlueZ version  5.66 (5.56 or newer)",
        "FAIL  token file     missing",
        "                     fix: Enrol this gateway.",
        "1 of 2 checks failed",
    ]
