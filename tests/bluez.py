"""BlueZ faked at its D-Bus edge, for tests that drive the real bleak BlueZ backend.

Each test gets a private dbus-daemon (a system bus; ``DBUS_SYSTEM_BUS_ADDRESS`` points at it through
monkeypatch) with python-dbusmock's ``bluez5`` template and adapter ``hci0`` on it: ``MockBlueZ`` of
``tests/bluez_mock.py`` (its methods are listed there), which the benchmarks share.

Use it from any test module::

    import pytest
    from tests.bluez import MockBlueZ, bluez_fixture, eddystone_eid, ibeacon, wait_until  # noqa: F401

    pytestmark = pytest.mark.dbus

    async def test_phone_passes(bluez: MockBlueZ) -> None:
        path = bluez.add_device("C0:FF:EE:00:00:01", -60, service_data=eddystone_eid(bytes(8)))
        bluez.set_rssi(path, -48)          # PropertiesChanged on org.bluez.Device1, as an advert would
        bluez.remove_device(path)          # InterfacesRemoved, as when BlueZ forgets the device

Template parameters go through indirect parametrisation, e.g. a BlueZ without the AdvertisementMonitor API
(no ``--experimental``)::

    @pytest.mark.parametrize("bluez", [{"enable_monitor_api": False}], indirect=True)

Importing ``bluez_fixture`` registers the fixture under the name ``bluez`` (``bluez`` is the same object, for
modules that prefer to import that name and silence F811).

``require_dbus_parts()`` skips locally (fails under CI=true) when dbus-daemon, dbus-python or dbusmock is
missing; the fixture calls it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.bluez_mock import (  # noqa: F401 - re-exported for the test modules
    ADAPTER,
    ADAPTER_IFACE,
    ADAPTER_PATH,
    APPLE,
    BLUEZ,
    DEVICE_IFACE,
    EDDYSTONE_UUID,
    MockBlueZ,
    eddystone_eid,
    ibeacon,
)
from tests.conftest import require_part


def require_dbus_parts() -> None:
    """Skip (fail under CI=true) unless dbus-daemon, dbus-python and python-dbusmock are all there."""
    require_part(shutil.which("dbus-daemon") is not None, "dbus-daemon (Debian package dbus-daemon)")
    require_part(importlib.util.find_spec("dbus") is not None, "dbus-python")
    require_part(importlib.util.find_spec("dbusmock") is not None, "python-dbusmock")


async def wait_until(predicate: Callable[[], bool], within_s: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate` on the event loop until it holds; fail the test after `within_s` seconds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        if predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(name="bluez")
def bluez_fixture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockBlueZ]:
    """A private system bus with BlueZ (dbusmock bluez5, adapter hci0); bleak in this test talks to it."""
    require_dbus_parts()
    mock = MockBlueZ(getattr(request, "param", None))
    try:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", mock.address)
        yield mock
    finally:
        mock.close()


bluez = bluez_fixture
