"""What is wrong with BlueZ, in words an installer can act on.

One look at org.bluez over the system bus (is D-Bus there, does bluetoothd answer us, is the adapter there
and powered) gives `Check`s that `doctor` reports and that stop `scan` and `calibrate` before they listen to
nothing; `classify` sorts the scanner's errors into stable kinds for the heartbeat and for those messages.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakDBusError
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import AuthError, DBusFastError

from beacon_agent.config import DEFAULT_CONFIG_FILE

DBUS_TIMEOUT_S: Final = 5.0
BLUETOOTHD: Final = "/usr/libexec/bluetooth/bluetoothd"  # Debian and Raspberry Pi OS Bookworm
VERSION_COMMANDS: Final[tuple[tuple[str, ...], ...]] = (
    ("bluetoothd", "--version"),
    (BLUETOOTHD, "--version"),
    ("/usr/sbin/bluetoothd", "--version"),
    ("bluetoothctl", "--version"),
)
AGENT_USER: Final = "beacon-agent"
INSTALL_BLUEZ: Final = "`sudo apt install bluez && sudo systemctl enable --now bluetooth`"
START_BLUEZ: Final = "`sudo systemctl enable --now bluetooth`"

BLUEZ: Final = "org.bluez"
ADAPTER: Final = "org.bluez.Adapter1"
TIMEDATE: Final = "org.freedesktop.timedate1"
ACCESS_DENIED: Final = "org.freedesktop.DBus.Error.AccessDenied"
NOT_RUNNING: Final = frozenset(
    {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
)
_VERSION: Final = re.compile(rb"(\d+)\.(\d+)")

FaultKind = Literal[
    "adapter_missing",
    "adapter_off",
    "bluez_not_running",
    "permission_denied",
    "dbus_unavailable",
    "busy",
    "timeout",
    "silent",  # the scan ran, but nothing at all was heard for the watchdog's time
    "other",
]

# D-Bus error names as BlueZ and the bus daemon send them, by what they mean for the scanner.
_DBUS_KINDS: Final[dict[str, FaultKind]] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": "bluez_not_running",
    "org.freedesktop.DBus.Error.NameHasNoOwner": "bluez_not_running",
    ACCESS_DENIED: "permission_denied",
    "org.bluez.Error.NotPermitted": "permission_denied",
    "org.bluez.Error.NotAuthorized": "permission_denied",
    "org.bluez.Error.NotReady": "adapter_off",
    "org.freedesktop.DBus.Error.UnknownObject": "adapter_missing",
    "org.bluez.Error.InProgress": "busy",
    "org.freedesktop.DBus.Error.NoReply": "timeout",
    "org.freedesktop.DBus.Error.Timeout": "timeout",
}
_ADAPTER_NOT_FOUND: Final = re.compile(r"adapter '[^']*' not found")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def classify(exc: BaseException) -> FaultKind:
    """The kind of a scanner error, from bleak's and dbus-fast's exception types and D-Bus error names."""
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason == BleakBluetoothNotAvailableReason.POWERED_OFF:
            return "adapter_off"
        if reason == BleakBluetoothNotAvailableReason.NO_BLUETOOTH:
            return "adapter_missing"
        if reason in (
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
            BleakBluetoothNotAvailableReason.DENIED_BY_USER,
            BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN,
        ):
            return "permission_denied"
        return "other"
    if isinstance(exc, BleakDBusError):
        return _DBUS_KINDS.get(exc.dbus_error, "other")
    if _ADAPTER_NOT_FOUND.search(str(exc)):
        return "adapter_missing"  # bleak's plain BleakError for an adapter name BlueZ does not have
    if isinstance(exc, AuthError):
        return "permission_denied"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError | EOFError):
        return "dbus_unavailable"  # the system bus socket is missing, refused or went away
    return "other"


# --- BlueZ's version ---------------------------------------------------------------------------------


async def bluez_version(commands: Sequence[Sequence[str]] = VERSION_COMMANDS) -> tuple[int, int] | None:
    """The (major, minor) BlueZ version the first working command prints, or None (not installed)."""
    for argv in commands:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
        except OSError:
            continue  # not installed there, or not executable for us: try the next place
        try:
            async with asyncio.timeout(DBUS_TIMEOUT_S):
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            continue
        match = _VERSION.search(out)
        if process.returncode == 0 and match:
            return int(match[1]), int(match[2])
    return None


# --- One look at the system bus ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DBusView:
    address: str
    bus_error: str | None = None  # the system bus could not be reached at all
    bluez_error: tuple[str, str] | None = None  # (error name, text) from org.bluez
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ntp: bool | None = None

    @property
    def bluez_answered(self) -> bool:
        return self.bus_error is None and self.bluez_error is None


async def probe_dbus(bus_address: str | None = None, *, ntp: bool = True) -> DBusView:
    """org.bluez's objects (and timedated's NTPSynchronized when `ntp`), or why they could not be read."""
    bus = MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM)
    address = bus_address or system_bus_address()
    try:
        async with asyncio.timeout(DBUS_TIMEOUT_S):
            await bus.connect()
    except (OSError, TimeoutError, DBusFastError, ValueError) as exc:
        return DBusView(address, bus_error=f"{type(exc).__name__}: {exc}")
    try:
        reply = await _call(bus, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        bluez_error = _error_of(reply)
        objects: dict[str, dict[str, dict[str, Any]]] = {}
        if bluez_error is None:
            objects = {
                path: {iface: {k: v.value for k, v in props.items()} for iface, props in ifaces.items()}
                for path, ifaces in reply.body[0].items()
            }
        synchronised = None
        if ntp:
            ntp_reply = await _call(
                bus,
                TIMEDATE,
                "/org/freedesktop/timedate1",
                "org.freedesktop.DBus.Properties",
                "Get",
                "ss",
                [TIMEDATE, "NTPSynchronized"],
            )
            synchronised = None if _error_of(ntp_reply) else bool(ntp_reply.body[0].value)
        return DBusView(address, bluez_error=bluez_error, objects=objects, ntp=synchronised)
    except TimeoutError:
        return DBusView(address, bluez_error=("timeout", f"no answer within {DBUS_TIMEOUT_S:.0f} s"))
    finally:
        bus.disconnect()


async def _call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> Message:
    message = Message(destination, path, interface, member, signature=signature, body=body or [])
    async with asyncio.timeout(DBUS_TIMEOUT_S):
        return await bus.call(message)


def _error_of(reply: Message) -> tuple[str, str] | None:
    if reply.message_type != MessageType.ERROR:
        return None
    text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
    return reply.error_name or "unknown", text


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/var/run/dbus/system_bus_socket"


# --- Checks ------------------------------------------------------------------------------------------


def access_check(view: DBusView, *, installed: bool = True) -> Check:
    """Whether org.bluez answers this user; `installed` tells "not installed" from "not running"."""
    name = "D-Bus access to BlueZ"
    if view.bus_error is not None:
        return Check(
            name,
            False,
            f"cannot reach the system bus at {view.address} ({view.bus_error})",
            "Start D-Bus and BlueZ: `sudo systemctl start dbus bluetooth`.",
        )
    if view.bluez_error is None:
        adapters = sum(ADAPTER in ifaces for ifaces in view.objects.values())
        return Check(name, True, f"org.bluez answered ({adapters} adapter{'s' if adapters != 1 else ''})")
    error, text = view.bluez_error
    detail = f"org.bluez refused: {error} {text}".strip()
    if error == ACCESS_DENIED:
        return Check(
            name,
            False,
            detail,
            f"Add the agent's user to the bluetooth group (`sudo usermod -aG bluetooth {AGENT_USER}`), "
            "then log in again or restart the service.",
        )
    if error in NOT_RUNNING:
        if not installed:
            return Check(
                name, False, "BlueZ is not installed (no bluetoothd)", f"Install it: {INSTALL_BLUEZ}."
            )
        return Check(
            name,
            False,
            "BlueZ (bluetoothd) is not running",
            f"Start it: {START_BLUEZ}; if it stops again, `journalctl -u bluetooth -b` says why.",
        )
    return Check(
        name, False, detail, "Restart BlueZ with `sudo systemctl restart bluetooth` and run doctor again."
    )


def adapter_check(adapter: str, view: DBusView) -> Check:
    """Whether BlueZ has `adapter`, and whether it is powered."""
    name = f"adapter {adapter}"
    if not view.bluez_answered:
        return Check(name, False, "not checked: BlueZ did not answer", "Fix D-Bus access to BlueZ first.")
    adapters = {path.rsplit("/", 1)[-1]: ifaces for path, ifaces in view.objects.items() if ADAPTER in ifaces}
    if adapter not in adapters:
        if adapters:
            others, first = ", ".join(sorted(adapters)), min(adapters)
            return Check(
                name,
                False,
                f"BlueZ has no adapter {adapter}, only {others}",
                f'`bluetoothctl list` shows the adapters; set adapter = "{first}" in {DEFAULT_CONFIG_FILE} '
                f"(or BEACON_AGENT_ADAPTER={first}; scan and calibrate also take --adapter {first}).",
            )
        return Check(
            name,
            False,
            "BlueZ sees no Bluetooth adapter at all",
            "Unblock Bluetooth with `sudo rfkill unblock bluetooth` and check that /boot/firmware/config.txt "
            "has no `dtoverlay=disable-bt`; `bluetoothctl list` must then show the adapter.",
        )
    if not adapters[adapter][ADAPTER].get("Powered", False):
        return Check(
            name,
            False,
            f"{adapter} is present but powered off",
            "Power it on with `sudo rfkill unblock bluetooth && bluetoothctl power on`, and set "
            "AutoEnable=true under [Policy] in /etc/bluetooth/main.conf so it stays on after a reboot.",
        )
    return Check(name, True, f"{adapter} is present and powered")


async def scan_preflight(
    adapter: str,
    *,
    bus_address: str | None = None,
    version_commands: Sequence[Sequence[str]] = VERSION_COMMANDS,
) -> Check | None:
    """What keeps a scan on `adapter` from working (D-Bus, bluetoothd, permission, adapter), or None."""
    view = await probe_dbus(bus_address, ntp=False)
    installed = True
    if view.bluez_error is not None and view.bluez_error[0] in NOT_RUNNING:
        installed = await bluez_version(version_commands) is not None
    for check in (access_check(view, installed=installed), adapter_check(adapter, view)):
        if not check.ok:
            return check
    return None


_FIXES: Final[dict[str, str]] = {
    "busy": "Another program may be scanning (is `bluetoothctl scan on` running?): stop it, or restart "
    "BlueZ with `sudo systemctl restart bluetooth`, and try again.",
    "timeout": "BlueZ is not answering in time: `sudo systemctl restart bluetooth`, and try again.",
    "permission_denied": f"Run as the agent's user (`sudo -u {AGENT_USER} beacon-agent ...`), which must "
    f"be in the bluetooth group (`sudo usermod -aG bluetooth {AGENT_USER}`).",
    "adapter_off": "Power the adapter on with `sudo rfkill unblock bluetooth && bluetoothctl power on`.",
}


def scan_failed(adapter: str, kind: FaultKind, last_error: str | None, attempts: int) -> Check:
    """A scan that kept failing to start although the preflight found nothing wrong: say what it said."""
    fix = _FIXES.get(kind, "Run `beacon-agent doctor`, which checks BlueZ step by step.")
    said = f": {last_error}" if last_error else ""
    return Check(
        f"scan on {adapter}", False, f"the scan failed to start {attempts} times in a row{said}", fix
    )
