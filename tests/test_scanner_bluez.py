"""The scanner on the real bleak BlueZ backend, against dbusmock's bluez5 on a private system bus.

Every advertisement here travels as BlueZ sends it (InterfacesAdded / PropertiesChanged on Device1) through
bleak's D-Bus manager into `Scanner`; the failures are BlueZ's own: its bus name vanishing, StartDiscovery
answering org.bluez.Error.InProgress, no AdvertisementMonitor API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import pytest
from bleak.exc import BleakDBusError

from beacon_agent import frames
from beacon_agent.scanner import Scanner, power_cycle_adapter
from tests.bluez import MockBlueZ, bluez_fixture, eddystone_eid, ibeacon, wait_until  # noqa: F401

pytestmark = [pytest.mark.dbus, pytest.mark.timeout(60)]

# Both ways the scanner can run: BlueZ with the AdvertisementMonitor API (passive), and without it.
BOTH_MODES = pytest.mark.parametrize(
    ("bluez", "mode"),
    [({}, "passive"), ({"enable_monitor_api": False}, "active")],
    indirect=["bluez"],
    ids=["passive", "active"],
)
ACTIVE_ONLY = pytest.mark.parametrize("bluez", [{"enable_monitor_api": False}], indirect=True, ids=["active"])

PHONE = "5E:11:0A:00:00:01"
BEACON = "C4:7C:8D:00:00:02"
EID = bytes.fromhex("0123456789abcdef")
SITE_UUID = UUID("e2c56db5-dffb-48d2-b060-d0f5a71096e0")

Advert = tuple[dict[int, bytes], dict[str, bytes], int, float]


class Heard:
    """The consumer: keeps every (manufacturer_data, service_data, rssi, now) the scanner hands over."""

    def __init__(self) -> None:
        self.adverts: list[Advert] = []
        self.raw_args: list[tuple[Any, ...]] = []

    def __call__(self, mfr: Mapping[int, bytes], svc: Mapping[str, bytes], rssi: int, now: float) -> None:
        self.raw_args.append((mfr, svc, rssi, now))
        self.adverts.append((dict(mfr), dict(svc), rssi, now))

    def decoded(self) -> list[frames.Frame | None]:
        return [frames.decode(mfr, svc) for mfr, svc, _, _ in self.adverts]

    def rssis_of(self, frame: frames.Frame) -> list[int]:
        return [rssi for (mfr, svc, rssi, _) in self.adverts if frames.decode(mfr, svc) == frame]


def fast_scanner(heard: Heard, watchdog_s: float = 30.0, **kwargs: Any) -> Scanner:
    return Scanner(
        heard,
        adapter="hci0",
        watchdog_s=watchdog_s,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        operation_timeout_s=5.0,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(scanner: Scanner) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(scanner.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@BOTH_MODES
async def test_devices_appear_and_their_frames_decode(bluez: MockBlueZ, mode: str) -> None:
    heard = Heard()
    scanner = fast_scanner(heard)
    async with running(scanner):
        await wait_until(bluez.scanning, what="the scan to start")
        bluez.add_device(PHONE, -67, service_data=eddystone_eid(EID, tx_power=-21), name="Pixel 8")
        bluez.add_device(BEACON, -58, manufacturer_data=ibeacon(SITE_UUID, 7, 42, tx_power=-59))
        await wait_until(lambda: len(heard.adverts) >= 2, what="both advertisements")
        stats = scanner.stats()

    assert heard.decoded() == [
        frames.EddystoneEID(eid=EID, tx_power=-21),
        frames.IBeacon(uuid=SITE_UUID, major=7, minor=42, tx_power=-59),
    ]
    assert [rssi for _, _, rssi, _ in heard.adverts] == [-67, -58]
    # Only the advertisement's data leaves the scanner: no address, device path or BLEDevice.
    for args in heard.raw_args:
        assert [type(a) for a in args[2:]] == [int, float]
        text = repr(args)
        for address in (PHONE, BEACON):
            assert address not in text
            assert address.replace(":", "_") not in text
    assert stats.mode == mode
    assert stats.running
    assert (stats.restarts, stats.start_failures) == (0, 0)
    if mode == "passive":
        assert stats.last_error is None
        assert len(bluez.method_calls("RegisterMonitor")) == 1
        assert bluez.method_calls("StartDiscovery") == []
    else:
        # Why the scan is active stays visible to `beacon-agent doctor`.
        assert "passive scanning" in (stats.last_error or "")
        [[filters]] = bluez.method_calls("SetDiscoveryFilter")[:1]
        assert filters["DuplicateData"] is not True
        assert dict(filters) == {"Transport": "le", "DuplicateData": False}
        assert len(bluez.method_calls("StartDiscovery")) == 1


@BOTH_MODES
async def test_rssi_and_data_changes_reach_the_callback(bluez: MockBlueZ, mode: str) -> None:
    heard = Heard()
    scanner = fast_scanner(heard)
    phone = frames.EddystoneEID(eid=EID, tx_power=-20)
    rotated_eid = bytes.fromhex("fedcba9876543210")
    async with running(scanner):
        await wait_until(bluez.scanning, what="the scan to start")
        path = bluez.add_device(PHONE, -80, service_data=eddystone_eid(EID))
        await wait_until(lambda: len(heard.adverts) == 1, what="the phone")
        bluez.set_rssi(path, -66)
        bluez.set_rssi(path, -51)
        await wait_until(lambda: len(heard.adverts) == 3, what="two RSSI changes")
        bluez.set_service_data(path, eddystone_eid(rotated_eid))
        await wait_until(lambda: len(heard.adverts) == 4, what="the rotated EID")
        bluez.remove_device(path)
        bluez.add_device(BEACON, -40, manufacturer_data=ibeacon(SITE_UUID, 1, 2))
        await wait_until(lambda: len(heard.adverts) == 5, what="the next device")

    assert scanner.stats().mode == mode
    assert heard.rssis_of(phone) == [-80, -66, -51]
    assert heard.decoded()[3] == frames.EddystoneEID(eid=rotated_eid, tx_power=-20)
    assert heard.adverts[3][2] == -51
    assert [now for *_, now in heard.adverts] == sorted(now for *_, now in heard.adverts)


async def test_a_batch_of_advertisements_reaches_the_callback_one_by_one(bluez: MockBlueZ) -> None:
    """`advertise` (what the moment benchmark drives its street with) is one PropertiesChanged per device."""
    heard = Heard()
    other = bytes.fromhex("fedcba9876543210")
    async with running(fast_scanner(heard)):
        await wait_until(bluez.scanning, what="the scan to start")
        first = bluez.add_device(PHONE, -80, service_data=eddystone_eid(EID))
        second = bluez.add_device(BEACON, -90, service_data=eddystone_eid(other))
        await wait_until(lambda: len(heard.adverts) == 2, what="both phones")
        bluez.advertise([(first, -70), (second, -85), (first, -62)])
        await wait_until(lambda: len(heard.adverts) == 5, what="three advertisements from one call")

    assert heard.rssis_of(frames.EddystoneEID(eid=EID, tx_power=-20)) == [-80, -70, -62]
    assert heard.rssis_of(frames.EddystoneEID(eid=other, tx_power=-20)) == [-90, -85]


@BOTH_MODES
async def test_bluez_going_away_and_coming_back_is_recovered(bluez: MockBlueZ, mode: str) -> None:
    heard = Heard()
    scanner = fast_scanner(heard, watchdog_s=0.5)
    async with running(scanner):
        await wait_until(bluez.scanning, what="the scan to start")
        bluez.add_device(PHONE, -60, service_data=eddystone_eid(EID))
        await wait_until(lambda: len(heard.adverts) == 1, what="the phone")

        bluez.stop_bluez()
        # The watchdog notices the silence, and restarts fail while org.bluez is off the bus.
        await wait_until(lambda: scanner.stats().start_failures >= 2, what="failed restarts")
        assert not scanner.stats().running

        bluez.start_bluez()
        # The new bluetoothd knows nothing of the old scan: only a real restart makes it scan.
        await wait_until(bluez.scanning, what="the new BlueZ to be told to scan")
        bluez.add_device(BEACON, -45, manufacturer_data=ibeacon(SITE_UUID, 3, 4))
        await wait_until(lambda: len(heard.adverts) == 2, what="an advertisement from the new BlueZ")
        stats = scanner.stats()

    assert heard.decoded()[1] == frames.IBeacon(uuid=SITE_UUID, major=3, minor=4, tx_power=-59)
    assert stats.running
    assert stats.mode == mode
    assert stats.watchdog_expiries >= 1
    assert stats.restarts >= 2


@ACTIVE_ONLY
async def test_start_discovery_in_progress_is_backed_off_and_retried(bluez: MockBlueZ) -> None:
    bluez.fail_next_start_discovery_with_in_progress(times=2)
    heard = Heard()
    scanner = fast_scanner(heard, power_cycle_after=10)
    async with running(scanner):
        await wait_until(bluez.scanning, what="discovery to start at last")
        bluez.add_device(PHONE, -60, service_data=eddystone_eid(EID))
        await wait_until(lambda: len(heard.adverts) == 1, what="the phone")
        stats = scanner.stats()

    assert len(bluez.method_calls("StartDiscovery")) == 3
    assert (stats.start_failures, stats.restarts, stats.power_cycles) == (2, 2, 0)
    assert "org.bluez.Error.InProgress" in (stats.last_error or "")
    assert stats.running
    assert stats.mode == "active"


@ACTIVE_ONLY
async def test_repeated_in_progress_escalates_to_an_adapter_power_cycle(bluez: MockBlueZ) -> None:
    bluez.fail_next_start_discovery_with_in_progress(times=2)
    heard = Heard()
    scanner = fast_scanner(heard, power_cycle_after=2)
    async with running(scanner):
        await wait_until(bluez.scanning, what="discovery to start after the power-cycle")
        stats = scanner.stats()

    assert bluez.powered_changes() == [False, True]
    assert stats.power_cycles == 1
    assert len(bluez.method_calls("StartDiscovery")) == 3


async def test_power_cycle_sets_powered_off_then_on(bluez: MockBlueZ) -> None:
    await power_cycle_adapter("hci0")
    assert bluez.powered_changes() == [False, True]

    with pytest.raises(BleakDBusError):
        await power_cycle_adapter("hci9")
