"""`beacon-agent doctor`: check what the gateway needs, and say in one sentence how to fix what is wrong.

Every check answers a `Check`; none raises. The edges (the system bus, the HTTP transport, the clock, the
files BlueZ is configured by, the commands that print its version) are parameters, so tests can point
them at a private dbus-daemon, a fake server and a temporary directory.
"""

from __future__ import annotations

import configparser
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Final

import httpx

from beacon_agent.bluez_check import (
    ADAPTER,
    AGENT_USER,
    BLUETOOTHD,
    INSTALL_BLUEZ,
    START_BLUEZ,
    VERSION_COMMANDS,
    Check,
    DBusView,
    access_check,
    adapter_check,
    bluez_version,
    probe_dbus,
)
from beacon_agent.config import DEFAULT_CONFIG_FILE, AgentSettings

MIN_BLUEZ: Final = (5, 56)  # AdvertisementMonitorManager1, which passive scanning needs
MAX_CLOCK_SKEW_S: Final = 5.0  # events carry the gateway's timestamps
HTTP_TIMEOUT_S: Final = 10.0
MAIN_CONF: Final = Path("/etc/bluetooth/main.conf")
PROC: Final = Path("/proc")
GUIDE: Final = "firmware_notes/raspberry-pi-gateway.md"

_MONITOR_MANAGER: Final = "org.bluez.AdvertisementMonitorManager1"
_TURN_ON_NTP: Final = (
    "Turn on network time with `sudo timedatectl set-ntp true` and let UDP port 123 out through the router."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_checks(
    settings: AgentSettings,
    *,
    bus_address: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Callable[[], datetime] = _utcnow,
    version_commands: Sequence[Sequence[str]] = VERSION_COMMANDS,
    main_conf: Path = MAIN_CONF,
    proc: Path = PROC,
) -> list[Check]:
    """Run every check in order: BlueZ, adapter, D-Bus access, clock, server, token."""
    version = await bluez_version(version_commands)
    bluez = await probe_dbus(bus_address)
    checks = [
        _version_check(version),
        access_check(bluez, installed=version is not None),
        adapter_check(settings.adapter, bluez),
        _experimental_check(settings.adapter, bluez, version, main_conf, proc),
        _ntp_check(bluez),
    ]
    token, token_check = _read_token(settings)
    async with httpx.AsyncClient(
        base_url=settings.server_url, transport=transport, timeout=HTTP_TIMEOUT_S
    ) as client:
        reachable, skew = await _server_checks(client, settings.server_url, now)
        checks += [reachable, skew, token_check]
        checks.append(await _token_accepted(client, settings, token, reachable.ok))
    return checks


def render(checks: Sequence[Check]) -> str:
    """Format checks as an aligned report, with the fix under each failure and a closing verdict."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{'ok' if check.ok else 'FAIL':<4}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = sum(not check.ok for check in checks)
    lines.append("all checks passed" if not failed else f"{failed} of {len(checks)} checks failed")
    return "\n".join(lines)


# --- BlueZ version -----------------------------------------------------------------------------------


def _version_check(version: tuple[int, int] | None) -> Check:
    name = "BlueZ version"
    if version is None:
        return Check(
            name,
            False,
            "neither bluetoothd nor bluetoothctl printed a version",
            f"Install BlueZ: {INSTALL_BLUEZ}.",
        )
    text = f"{version[0]}.{version[1]}"
    if version < MIN_BLUEZ:
        return Check(
            name,
            False,
            f"{text} is older than 5.56, so no passive scanning: the agent scans actively, using more power",
            "Upgrade to Raspberry Pi OS Bookworm or newer (BlueZ 5.66+).",
        )
    return Check(name, True, f"{text} (5.56 or newer)")


# --- D-Bus: experimental mode, NTP (access and adapter are in bluez_check) -----------------------------


def _experimental_check(
    adapter: str, view: DBusView, version: tuple[int, int] | None, main_conf: Path, proc: Path
) -> Check:
    name = "passive scanning"
    configured, daemon = _experimental_configured(main_conf, proc)
    enable = (
        "Add a drop-in with `sudo systemctl edit bluetooth.service` holding `[Service]`, `ExecStart=` and "
        f"`ExecStart={daemon or BLUETOOTHD} --experimental`, then `sudo systemctl restart bluetooth` "
        f"(see {GUIDE})."
    )
    fallback = "so the agent falls back to active scanning"
    ifaces = view.objects.get(f"/org/bluez/{adapter}")
    if ifaces is None or ADAPTER not in ifaces:
        # BlueZ itself cannot tell us; judge by how bluetoothd is started and configured.
        if daemon is None and not view.bluez_answered:
            # No bluetoothd at all: its command line cannot lack a flag it does not have.
            if version is None:
                return Check(
                    name, False, "not checked: BlueZ is not installed", f"Install it: {INSTALL_BLUEZ}."
                )
            return Check(
                name,
                False,
                "not checked: bluetoothd is not running",
                f"Start it: {START_BLUEZ}, then run doctor again.",
            )
        if configured:
            return Check(name, True, f"BlueZ experimental mode is on ({configured}); adapter not verified")
        return Check(name, False, f"bluetoothd runs without --experimental, {fallback}", enable)
    if _MONITOR_MANAGER in ifaces:
        return Check(name, True, f"{adapter} offers AdvertisementMonitorManager1 (BlueZ experimental mode)")
    if version is not None and version < MIN_BLUEZ:
        return Check(
            name,
            False,
            f"this BlueZ is too old for AdvertisementMonitorManager1, {fallback}",
            "Upgrade to Raspberry Pi OS Bookworm or newer (BlueZ 5.66+).",
        )
    if configured:
        return Check(
            name,
            False,
            f"experimental mode is set ({configured}) but {adapter} offers no AdvertisementMonitorManager1",
            "Restart BlueZ so the setting takes effect (`sudo systemctl restart bluetooth`); if that does "
            "not help, the kernel is older than 5.10 and needs an update (`sudo apt full-upgrade`).",
        )
    return Check(
        name,
        False,
        f"{adapter} offers no AdvertisementMonitorManager1 (no BlueZ experimental mode), {fallback}",
        enable,
    )


def _experimental_configured(main_conf: Path, proc: Path) -> tuple[str | None, str | None]:
    """Where experimental mode is switched on, if anywhere; and the running bluetoothd's path."""
    daemon: str | None = None
    source: str | None = None
    try:
        entries = [entry for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        entries = []
    for entry in entries:
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue  # the process ended, or is not ours to read
        if not argv or Path(argv[0].decode(errors="replace")).name != "bluetoothd":
            continue
        daemon = argv[0].decode(errors="replace")
        if any(_is_experimental_flag(arg.decode(errors="replace")) for arg in argv[1:]):
            source = "bluetoothd started with --experimental"
        break
    if source is None and _main_conf_experimental(main_conf):
        source = f"Experimental = true in {main_conf}"
    return source, daemon


def _is_experimental_flag(arg: str) -> bool:
    if arg == "--experimental":
        return True
    return arg.startswith("-") and not arg.startswith("--") and "E" in arg[1:]  # -E, or bundled as -nE


def _main_conf_experimental(main_conf: Path) -> bool:
    parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True)
    try:
        parser.read_string(main_conf.read_text())
        return parser.getboolean("General", "Experimental", fallback=False)
    except (OSError, UnicodeDecodeError, configparser.Error, ValueError):
        return False


def _ntp_check(view: DBusView) -> Check:
    name = "clock synchronised"
    if view.ntp is None:
        return Check(name, True, "timedated cannot say; the comparison with the server's clock decides")
    if view.ntp:
        return Check(name, True, "systemd-timedated reports NTPSynchronized")
    return Check(
        name,
        False,
        "the system clock is not synchronised by NTP (a Pi has no battery-backed clock)",
        _TURN_ON_NTP,
    )


# --- server and token --------------------------------------------------------------------------------


async def _server_checks(
    client: httpx.AsyncClient, server_url: str, now: Callable[[], datetime]
) -> tuple[Check, Check]:
    name, skew_name = "server reachable", "clock matches server"
    try:
        sent = now()
        answer = await client.get("/healthz")
        received = now()
    except httpx.HTTPError as exc:
        fix = f"Check server_url in {DEFAULT_CONFIG_FILE} and the Pi's network connection (Wi-Fi, cable)."
        if "CERTIFICATE" in str(exc).upper():
            fix = "Check the Pi's date and time (`timedatectl`): a wrong clock makes valid certificates fail."
        return (
            Check(name, False, f"GET {server_url}/healthz failed: {type(exc).__name__}: {exc}", fix),
            Check(
                skew_name, False, "not checked: the server did not answer", "Make the server reachable first."
            ),
        )
    if answer.status_code != 200:
        reachable = Check(
            name,
            False,
            f"GET {server_url}/healthz answered {answer.status_code}",
            "The server is up but unwell: tell the platform operator.",
        )
    else:
        reachable = Check(name, True, f"{server_url} answered /healthz")
    return reachable, _skew_check(skew_name, answer.headers.get("date"), sent, received)


def _skew_check(name: str, date_header: str | None, sent: datetime, received: datetime) -> Check:
    if not date_header:
        return Check(name, True, "the server sent no Date header; not compared")
    try:
        server_time = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return Check(name, True, f"the server's Date header {date_header!r} is unreadable; not compared")
    local = sent + (received - sent) / 2
    # Date has whole seconds, so the server's clock was somewhere in [date, date + 1 s): take the middle.
    skew = (server_time - local).total_seconds() + 0.5
    if abs(skew) > MAX_CLOCK_SKEW_S:
        direction = "behind" if skew > 0 else "ahead of"
        return Check(
            name,
            False,
            f"this gateway's clock is {abs(skew):.0f} s {direction} the server's (at most "
            f"{MAX_CLOCK_SKEW_S:.0f} s allowed, because events carry the gateway's timestamps)",
            _TURN_ON_NTP,
        )
    return Check(name, True, f"within {MAX_CLOCK_SKEW_S:.0f} s of the server's clock ({skew:+.1f} s)")


def _read_token(settings: AgentSettings) -> tuple[str | None, Check]:
    name = "token file"
    path = settings.token_file
    enrol = (
        f"Enrol this gateway: `beacon-agent enroll --server {settings.server_url} --code CODE` with a code "
        "from the charity's admin (see firmware_notes/gateway-enrolment.md)."
    )
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        token = path.read_text().strip()
    except FileNotFoundError:
        return None, Check(name, False, f"{path} does not exist: this gateway is not enrolled", enrol)
    except PermissionError:
        return None, Check(
            name,
            False,
            f"{path} is not readable by this user",
            f"Run doctor as the agent's user: `sudo -u {AGENT_USER} beacon-agent doctor`.",
        )
    except (OSError, UnicodeDecodeError) as exc:
        return None, Check(name, False, f"{path} cannot be read: {exc}", enrol)
    if not token:
        return None, Check(name, False, f"{path} is empty", enrol)
    if mode & 0o077:
        return token, Check(
            name,
            False,
            f"{path} has mode {mode:04o}, so other users can read the gateway's secret",
            f"Restrict it with `chmod 600 {path}`, and re-enrol if someone else may have copied it.",
        )
    return token, Check(name, True, f"{path} exists with mode {mode:04o}")


async def _token_accepted(
    client: httpx.AsyncClient, settings: AgentSettings, token: str | None, reachable: bool
) -> Check:
    name = "token accepted"
    if token is None:
        return Check(name, False, "not checked: no token", "Fix the token file first.")
    if not reachable:
        return Check(
            name, False, "not checked: the server did not answer", "Make the server reachable first."
        )
    try:
        answer = await client.get("/gateway/v1/config", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return Check(
            name,
            False,
            f"GET /gateway/v1/config failed: {type(exc).__name__}: {exc}",
            "Check the Pi's network connection, then run doctor again.",
        )
    if answer.status_code in (200, 304):
        return Check(name, True, "the server accepted this gateway's token")
    if answer.status_code == 401:
        return Check(
            name,
            False,
            "the server refused the token (401): it was replaced or revoked",
            f"Re-enrol with a new code from the charity's admin: `beacon-agent enroll --server "
            f"{settings.server_url} --code CODE`.",
        )
    if answer.status_code == 404:
        return Check(
            name,
            False,
            "the server has no /gateway/v1/config: it is older than this agent",
            "Ask the platform operator to update the server.",
        )
    return Check(
        name,
        False,
        f"GET /gateway/v1/config answered {answer.status_code}",
        "Run doctor again later; if it persists, tell the platform operator.",
    )
