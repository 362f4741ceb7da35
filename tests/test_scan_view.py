"""`beacon-agent scan` and `calibrate` read the air through the real scanner, on BlueZ faked at D-Bus."""

from __future__ import annotations

import asyncio
import io
import uuid

import pytest

from beacon_agent.calibrate import calibrate, gather
from beacon_agent.frames import EddystoneEID, IBeacon
from beacon_agent.scan_view import ScanTable, describe, run_scan, sightings
from tests.bluez import MockBlueZ, bluez_fixture, eddystone_eid, ibeacon, wait_until  # noqa: F401

DOOR = uuid.UUID("6a1c0000-0000-4000-8000-00000000beef")


def test_describe_names_frames_without_any_address():
    assert describe(IBeacon(DOOR, 1, 2, -59)) == ("ibeacon", f"{DOOR}/1/2")
    assert describe(EddystoneEID(bytes.fromhex("0011223344556677"), -20)) == (
        "eddystone_eid",
        "0011223344556677",
    )


def test_table_counts_foreign_adverts_and_forgets_silent_beacons():
    table = ScanTable()
    table.observe(ibeacon(DOOR, 1, 2), {}, -70, 0.0)
    table.observe(ibeacon(DOOR, 1, 2), {}, -66, 1.0)
    table.observe({0x0006: b"\x01\x09\x20"}, {}, -80, 1.0)
    text = table.render(2.0)
    assert f"{DOOR}/1/2" in text
    assert "-66" in text
    assert "1 other advertisements ignored" in text
    assert f"{DOOR}/1/2" not in table.render(100.0)


@pytest.mark.dbus
@pytest.mark.timeout(60)
async def test_scan_shows_what_bluez_hears(bluez: MockBlueZ):
    out = io.StringIO()
    scanning = asyncio.create_task(run_scan("hci0", 4.0, out))
    await wait_until(bluez.scanning, 15, "scan to start")
    bluez.add_device("D0:0D:AB:CD:EF:01", -61, manufacturer_data=ibeacon(DOOR, 1, 2))
    bluez.add_device("5E:11:0A:00:00:01", -55, service_data=eddystone_eid(bytes.fromhex("a1b2c3d4e5f60718")))
    await asyncio.wait_for(scanning, 30)
    text = out.getvalue()
    rows = text.splitlines()
    assert any(r.startswith("ibeacon") and "-61" in r and r.endswith(f"{DOOR}/1/2") for r in rows), text
    assert any(r.startswith("eddystone_eid") and r.endswith("a1b2c3d4e5f60718") for r in rows), text
    assert "D0:0D" not in text
    assert "5E:11" not in text


@pytest.mark.dbus
@pytest.mark.timeout(60)
async def test_calibrate_measures_a_beacon_held_at_one_metre(bluez: MockBlueZ):
    async with sightings("hci0") as heard:
        await wait_until(bluez.scanning, 15, "scan to start")
        path = bluez.add_device("D0:0D:AB:CD:EF:01", -61, manufacturer_data=ibeacon(DOOR, 1, 2))

        async def hold_still() -> None:
            for n in range(40):
                bluez.set_rssi(path, (-60, -61, -62, -61)[n % 4])
                await asyncio.sleep(0.02)

        holding = asyncio.create_task(hold_still())
        samples = await gather(heard, seconds=2.0)
        await holding
    result = calibrate(samples, f"ibeacon:{DOOR}/1/2")
    assert result.power_1m == -61
    assert result.samples >= 20
