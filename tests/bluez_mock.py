"""BlueZ faked at its D-Bus edge: a private system bus with python-dbusmock's ``bluez5`` template on it.

Shared by the tests (``tests/bluez.py`` wraps it in a pytest fixture) and the benchmarks (``bench/moment.py``
drives a street of phones through it), so it imports nothing of pytest. Only dbusmock's public
``org.freedesktop.DBus.Mock`` API is used, so what bleak sees is what a real bluetoothd would send.

``MockBlueZ(parameters)`` starts a dbus-daemon (a system bus on a socket of its own; point
``DBUS_SYSTEM_BUS_ADDRESS`` at ``.address``) and the mock with adapter ``hci0``; ``close()`` stops both.
Its methods:
  ``add_device(address, rssi, manufacturer_data=..., service_data=..., name=None) -> path``;
  ``set_rssi(path, rssi)``, ``set_service_data(path, data)``, ``set_manufacturer_data(path, data)``,
  ``remove_device(path)``;
  ``advertise([(path, rssi), ...])`` is ``set_rssi`` for many devices in one D-Bus call (one
  PropertiesChanged per device, as BlueZ sends one per advertisement): a street of phones each advertising
  every 100 ms is more round trips than one call each can carry;
  ``stop_bluez()`` kills the mock (org.bluez leaves the bus, as when bluetoothd crashes) and
  ``start_bluez()`` brings a fresh one with an empty ``hci0``;
  ``fail_next_start_discovery_with_in_progress(times=1)`` makes StartDiscovery answer
  ``org.bluez.Error.InProgress``; ``set_powered(False)`` switches hci0 off;
  ``scanning()`` tells whether a client is scanning (discovering, or an advertisement monitor registered);
  ``method_calls(name)`` lists the adapter's logged calls; ``powered_changes()`` lists the values clients
  set on ``Adapter1.Powered``.
Device1.ManufacturerData is ``a{qv}`` and Device1.ServiceData ``a{sv}``, as BlueZ sends them (the template's
own AddDevice sends arrays, which bleak cannot read). Values travel as real D-Bus messages; nothing of ours
is faked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

BLUEZ: str = "org.bluez"
BLUEZ_MOCK_IFACE: str = "org.bluez.Mock"
ADAPTER: str = "hci0"
ADAPTER_PATH: str = f"/org/bluez/{ADAPTER}"
ADAPTER_IFACE: str = "org.bluez.Adapter1"
DEVICE_IFACE: str = "org.bluez.Device1"
MOCK_IFACE: str = "org.freedesktop.DBus.Mock"
OBJECT_MANAGER_IFACE: str = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_IFACE: str = "org.freedesktop.DBus.Properties"
EDDYSTONE_UUID: str = "0000feaa-0000-1000-8000-00805f9b34fb"
APPLE: int = 0x004C
NAHBAR_MOCK_IFACE: str = "org.bluez.NahbarMock"  # our batch method lives here, apart from the template's
_START_TIMEOUT_S: float = 15.0

# StartDiscovery as the template has it, plus a countdown of InProgress answers first. dbusmock runs
# this code in the mock with `self` (the adapter) and the `dbus` module at hand.
_START_DISCOVERY_CODE = """
left = getattr(self, "nahbar_in_progress_{n}", {times})
if left > 0:
    setattr(self, "nahbar_in_progress_{n}", left - 1)
    raise dbus.exceptions.DBusException("Operation already in progress", name="org.bluez.Error.InProgress")
self.props["org.bluez.Adapter1"]["Discovering"] = dbus.Boolean(True)
self.EmitSignal("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{{sv}}as",
                ["org.bluez.Adapter1", {{"Discovering": dbus.Boolean(True)}}, []])
"""

# Many devices' new RSSI in one call. dbusmock runs this code in the mock with `args` and its `objects`
# (path -> mock object) at hand; UpdateProperties sends each device's PropertiesChanged, as an advert would.
_ADVERTISE_CODE = """
for path, rssi in args[0]:
    objects[path].UpdateProperties("org.bluez.Device1", {"RSSI": dbus.Int16(rssi)})
"""

_DAEMON_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def eddystone_eid(eid: bytes, tx_power: int = -20) -> dict[str, bytes]:
    """Service data of an Eddystone-EID frame, keyed as bleak keys it."""
    assert len(eid) == 8
    return {EDDYSTONE_UUID: bytes([0x30, tx_power & 0xFF]) + eid}


def ibeacon(uuid: UUID, major: int, minor: int, tx_power: int = -59) -> dict[int, bytes]:
    """Manufacturer data of an iBeacon frame, keyed by Apple's company id as bleak keys it."""
    body = b"\x02\x15" + uuid.bytes + major.to_bytes(2, "big") + minor.to_bytes(2, "big")
    return {APPLE: body + bytes([tx_power & 0xFF])}


class MockBlueZ:
    """A private system bus with dbusmock's bluez5 template on it, driven over D-Bus."""

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        # Imported here: a missing dbus-python must skip (require_dbus_parts), not break collection.
        import dbus  # type: ignore[import-untyped]

        self._dbus = dbus
        self.parameters = dict(parameters or {})
        # A short directory: unix socket paths are limited to 108 bytes, pytest's tmp_path often is not.
        self._dir = Path(tempfile.mkdtemp(prefix="nahbar-bluez-"))
        self._mock: subprocess.Popen[bytes] | None = None
        self._logs: list[Path] = []
        self._fail_count = 0
        self._advertise_added = False
        socket = self._dir / "system_bus_socket"
        config = self._dir / "system.conf"
        config.write_text(_DAEMON_CONFIG.format(socket=socket))
        self._daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            # It only complains that it may not raise its fd limit, which a test bus does not need.
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().strip()
        if not self.address:
            self.close()
            raise RuntimeError("dbus-daemon did not start")
        try:
            self._bus = dbus.bus.BusConnection(self.address)
            self.start_bluez()
        except BaseException:
            self.close()
            raise

    # --- bluetoothd coming and going --------------------------------------------------------------------

    def start_bluez(self) -> None:
        """Start a fresh bluetoothd (the mock) with an empty, powered hci0."""
        assert self._mock is None, "BlueZ is already running"
        log = self._dir / f"bluez-{len(self._logs)}.log"
        self._logs.append(log)
        argv = [sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5", "-l", str(log)]
        if self.parameters:
            argv += ["-p", json.dumps(self.parameters)]
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        self._mock = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._advertise_added = False
        deadline = time.monotonic() + _START_TIMEOUT_S
        # The mock owns its name a moment before the template's methods exist, so retry until they do.
        while True:
            try:
                self._call("/", BLUEZ_MOCK_IFACE, "AddAdapter", ADAPTER, "nahbar-gateway")
                return
            except self._dbus.exceptions.DBusException as exc:
                if self._mock.poll() is not None or time.monotonic() > deadline:
                    stderr = self._mock.stderr.read().decode() if self._mock.stderr else ""
                    raise RuntimeError(f"the bluez5 mock did not start: {exc}\n{stderr}") from exc
            time.sleep(0.02)

    def stop_bluez(self) -> None:
        """Kill bluetoothd (the mock) the hard way: org.bluez just leaves the bus, no signals."""
        assert self._mock is not None, "BlueZ is not running"
        self._mock.send_signal(signal.SIGKILL)
        self._mock.wait(5)
        if self._mock.stderr:
            self._mock.stderr.close()
        self._mock = None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while self._bus.name_has_owner(BLUEZ):
            if time.monotonic() > deadline:
                raise RuntimeError("org.bluez is still owned after the mock was killed")
            time.sleep(0.01)

    # --- devices ----------------------------------------------------------------------------------------

    def add_device(
        self,
        address: str,
        rssi: int,
        *,
        manufacturer_data: Mapping[int, bytes] | None = None,
        service_data: Mapping[str, bytes] | None = None,
        name: str | None = None,
    ) -> str:
        """Make a device appear on hci0 as BlueZ does for a new advertiser; answer its object path."""
        dbus = self._dbus
        path = f"{ADAPTER_PATH}/dev_{address.replace(':', '_').upper()}"
        props: dict[str, Any] = {
            "Address": dbus.String(address),
            "AddressType": dbus.String("random"),
            "Alias": dbus.String(name or address.replace(":", "-")),
            "Adapter": dbus.ObjectPath(ADAPTER_PATH),
            "Paired": dbus.Boolean(False),
            "Bonded": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False),
            "Blocked": dbus.Boolean(False),
            "Connected": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False),
            "ServicesResolved": dbus.Boolean(False),
            "RSSI": dbus.Int16(rssi),
            "UUIDs": dbus.Array(sorted(service_data or {}), signature="s"),
        }
        if name is not None:
            props["Name"] = dbus.String(name)
        # BlueZ leaves these out when the advertisement carried none.
        if manufacturer_data:
            props["ManufacturerData"] = self._manufacturer_data(manufacturer_data)
        if service_data:
            props["ServiceData"] = self._service_data(service_data)
        device = dbus.Dictionary(props, signature="sv")
        self._call(
            "/", MOCK_IFACE, "AddObject", path, DEVICE_IFACE, device, dbus.Array([], signature="(ssss)")
        )
        added = dbus.Dictionary({DEVICE_IFACE: device}, signature="sa{sv}")
        self._call(
            "/", MOCK_IFACE, "EmitSignal", OBJECT_MANAGER_IFACE, "InterfacesAdded", "oa{sa{sv}}",
            dbus.Array([dbus.ObjectPath(path), added], signature="v"),
        )  # fmt: skip
        return path

    def set_rssi(self, path: str, rssi: int) -> None:
        """A new advertisement from a known device at another signal strength."""
        self._update(path, {"RSSI": self._dbus.Int16(rssi)})

    def set_service_data(self, path: str, service_data: Mapping[str, bytes]) -> None:
        """A known device now advertises other service data (e.g. its EID rotated)."""
        self._update(path, {"ServiceData": self._service_data(service_data)})

    def set_manufacturer_data(self, path: str, manufacturer_data: Mapping[int, bytes]) -> None:
        """A known device now advertises other manufacturer data."""
        self._update(path, {"ManufacturerData": self._manufacturer_data(manufacturer_data)})

    def advertise(self, readings: Sequence[tuple[str, int]]) -> None:
        """New advertisements from known devices, (path, rssi) each, in one D-Bus call."""
        dbus = self._dbus
        if not self._advertise_added:
            self._call(ADAPTER_PATH, MOCK_IFACE, "AddMethod", NAHBAR_MOCK_IFACE, "Advertise", "a(on)", "",
                       _ADVERTISE_CODE)  # fmt: skip
            self._advertise_added = True
        batch = dbus.Array(
            [dbus.Struct((dbus.ObjectPath(path), dbus.Int16(rssi))) for path, rssi in readings],
            signature="(on)",
        )
        self._call(ADAPTER_PATH, NAHBAR_MOCK_IFACE, "Advertise", batch)

    def clear_calls(self) -> None:
        """Forget the adapter's logged calls (the mock keeps every one; a long run would pile them up)."""
        self._call(ADAPTER_PATH, MOCK_IFACE, "ClearCalls")

    def remove_device(self, path: str) -> None:
        """BlueZ forgets the device (InterfacesRemoved)."""
        self._call(ADAPTER_PATH, ADAPTER_IFACE, "RemoveDevice", self._dbus.ObjectPath(path))

    # --- misbehaviour and inspection --------------------------------------------------------------------

    def fail_next_start_discovery_with_in_progress(self, times: int = 1) -> None:
        """Make the next `times` StartDiscovery calls answer org.bluez.Error.InProgress."""
        self._fail_count += 1
        code = _START_DISCOVERY_CODE.format(n=self._fail_count, times=times)
        self._call(ADAPTER_PATH, MOCK_IFACE, "AddMethod", ADAPTER_IFACE, "StartDiscovery", "", "", code)

    def set_powered(self, powered: bool) -> None:
        """Switch hci0 on or off, as `bluetoothctl power off` (or rfkill) would."""
        dbus = self._dbus
        self._call(ADAPTER_PATH, PROPERTIES_IFACE, "Set", ADAPTER_IFACE, "Powered", dbus.Boolean(powered))

    def method_calls(self, method: str) -> list[list[Any]]:
        """The arguments of each logged call of `method` on hci0 since this BlueZ started."""
        calls = self._call(ADAPTER_PATH, MOCK_IFACE, "GetMethodCalls", method)
        return [list(args) for _when, args in calls]

    def scanning(self) -> bool:
        """Whether a client scans on hci0: discovery running, or an advertisement monitor registered."""
        discovering = bool(self._call(ADAPTER_PATH, PROPERTIES_IFACE, "Get", ADAPTER_IFACE, "Discovering"))
        monitors = len(self.method_calls("RegisterMonitor")) - len(self.method_calls("UnregisterMonitor"))
        return discovering or monitors > 0

    def powered_changes(self) -> list[bool]:
        """Every value a client set on hci0's Adapter1.Powered, oldest first, across BlueZ restarts."""
        marker = f"Set {ADAPTER_PATH} {ADAPTER_IFACE}.Powered "
        changes: list[bool] = []
        for log in self._logs:
            text = log.read_text() if log.exists() else ""
            changes += [
                line.split(marker, 1)[1].strip() == "True" for line in text.splitlines() if marker in line
            ]
        return changes

    def close(self) -> None:
        """Stop the mock and the bus and remove their files."""
        if self._mock is not None:
            self._mock.kill()
            self._mock.wait(5)
            if self._mock.stderr:
                self._mock.stderr.close()
            self._mock = None
        if hasattr(self, "_bus"):
            self._bus.close()
        if self._daemon.poll() is None:
            self._daemon.terminate()
            self._daemon.wait(5)
        if self._daemon.stdout:
            self._daemon.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _call(self, path: str, interface: str, method: str, *args: Any) -> Any:
        # A fresh proxy per call: a proxy binds to the unique name of the BlueZ it first met.
        proxy = self._bus.get_object(BLUEZ, path, introspect=False)
        return proxy.get_dbus_method(method, interface)(*args)

    def _update(self, path: str, props: dict[str, Any]) -> None:
        self._call(
            path, MOCK_IFACE, "UpdateProperties", DEVICE_IFACE, self._dbus.Dictionary(props, signature="sv")
        )

    def _manufacturer_data(self, data: Mapping[int, bytes]) -> Any:
        dbus = self._dbus
        return dbus.Dictionary(
            {dbus.UInt16(k): dbus.Array(list(v), signature="y") for k, v in data.items()}, signature="qv"
        )

    def _service_data(self, data: Mapping[str, bytes]) -> Any:
        dbus = self._dbus
        return dbus.Dictionary(
            {dbus.String(k): dbus.Array(list(v), signature="y") for k, v in data.items()}, signature="sv"
        )
