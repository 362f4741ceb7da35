"""Calibrating 1 m power: robust to fades, refuses shaky or thin measurements, picks the right target."""

from __future__ import annotations

import asyncio
import statistics
import struct
from collections.abc import AsyncIterator, Iterable
from uuid import UUID

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from beacon_agent.calibrate import (
    STRONGEST_EID,
    CalibrationError,
    calibrate,
    frames_from_bleak,
    gather,
    measure,
    pick_target,
    sighting_key,
)
from beacon_agent.frames import EddystoneEID, EddystoneUID, Frame, IBeacon

EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"
SITE_UUID = UUID("f7826da6-4fa2-4e98-8024-bc5b71e0893e")
DOOR = IBeacon(SITE_UUID, 1, 2, -59)
DOOR_KEY = f"ibeacon:{SITE_UUID}/1/2"
PHONE = EddystoneEID(bytes.fromhex("0102030405060708"), -20)
PHONE_KEY = "eddystone_eid:0102030405060708"
OTHER_PHONE = EddystoneEID(bytes.fromhex("a1a2a3a4a5a6a7a8"), -20)

rssi_values = st.integers(min_value=-110, max_value=-20)


def _readings(*runs: tuple[int, int]) -> list[int]:
    return [rssi for rssi, count in runs for _ in range(count)]


# --- measure -----------------------------------------------------------------------------------------


def test_a_steady_beacon_gives_its_trimmed_mean():
    readings = _readings((-58, 10), (-59, 20), (-60, 10))
    result = measure(DOOR_KEY, readings)
    assert result.power_1m == -59
    assert result.samples == 40
    assert result.target == DOOR_KEY
    assert result.spread_db == pytest.approx(1.4826 * 0.5)  # half the readings are 1 dB off the median


def test_deep_fades_do_not_drag_the_result_down():
    steady = _readings((-61, 15), (-62, 25), (-63, 15))
    faded = [*steady, *([-95] * 10)]  # a passer-by walked between for a moment
    assert statistics.fmean(faded) < -67
    result = measure(DOOR_KEY, faded)
    assert result.power_1m == -62


def test_bluez_placeholders_are_not_readings():
    result = measure(DOOR_KEY, [*([-70] * 25), *([127] * 10), *([-128] * 3)])
    assert result.samples == 25
    assert result.power_1m == -70


def test_too_few_readings_are_refused_with_what_to_do():
    with pytest.raises(CalibrationError, match=r"only 5 readings .*need 20.*1 m"):
        measure(DOOR_KEY, [-60] * 5)


def test_a_shaky_hand_is_refused():
    walking = [-50, -58, -66, -74, -82] * 10
    with pytest.raises(CalibrationError, match="vary too much.*hold the phone/beacon still at 1 m"):
        measure(DOOR_KEY, walking)


@given(value=rssi_values, extra=st.integers(min_value=0, max_value=80))
def test_constant_readings_calibrate_to_themselves(value: int, extra: int):
    result = measure(DOOR_KEY, [value] * (20 + extra))
    assert result.power_1m == value
    assert result.spread_db == 0


@given(
    value=rssi_values,
    count=st.integers(min_value=20, max_value=200),
    fades=st.lists(st.integers(min_value=-127, max_value=0), max_size=200),
)
def test_up_to_a_fifth_of_low_outliers_change_nothing(value: int, count: int, fades: list[int]):
    fades = [min(f, value) for f in fades]  # fades only ever lower a reading
    while len(fades) > (count + len(fades)) // 5:  # at most floor(20 %) of the final series
        fades.pop()
    result = measure(DOOR_KEY, [value] * count + fades)
    assert result.power_1m == value


@given(readings=st.lists(rssi_values, min_size=20, max_size=120), seed=st.randoms(use_true_random=False))
def test_result_ignores_order_and_stays_within_the_readings(readings: list[int], seed):
    try:
        result = measure(DOOR_KEY, readings, max_spread_db=100)
    except CalibrationError:
        pytest.fail("no spread limit, enough readings: must not refuse")
    shuffled = list(readings)
    seed.shuffle(shuffled)
    assert measure(DOOR_KEY, shuffled, max_spread_db=100) == result
    assert min(readings) <= result.mean_dbm <= max(readings)
    assert result.samples == len(readings)


# --- targets -----------------------------------------------------------------------------------------


def test_sighting_keys_follow_frames_identifier():
    assert sighting_key(DOOR) == DOOR_KEY
    assert sighting_key(PHONE) == PHONE_KEY
    uid = EddystoneUID(bytes(range(10)), bytes(range(6)), -20)
    assert sighting_key(uid) == "eddystone_uid:00010203040506070809/000102030405"


def test_the_strongest_eid_is_the_phone_held_close():
    samples = [
        *[(PHONE_KEY, -55)] * 5,
        *[("eddystone_eid:a1a2a3a4a5a6a7a8", -80)] * 30,  # someone across the street, heard more often
        ("eddystone_eid:a1a2a3a4a5a6a7a8", -40),  # ... with one lucky peak
        *[(DOOR_KEY, -45)] * 10,  # a beacon is louder, but it is not a phone
    ]
    assert pick_target(samples, STRONGEST_EID) == PHONE_KEY


def test_a_named_beacon_is_chosen_even_when_quieter():
    samples = [(PHONE_KEY, -40), (DOOR_KEY, -70)]
    assert pick_target(samples, DOOR_KEY) == DOOR_KEY


def test_an_unheard_beacon_is_refused_naming_what_was_heard():
    with pytest.raises(CalibrationError, match=rf"ibeacon:{SITE_UUID}/9/9 was not heard .*{DOOR_KEY}"):
        pick_target([(DOOR_KEY, -60), (PHONE_KEY, -50)], f"ibeacon:{SITE_UUID}/9/9")


def test_no_phone_heard():
    with pytest.raises(CalibrationError, match="no Eddystone-EID was heard"):
        pick_target([(DOOR_KEY, -60)])


def test_calibrate_measures_only_the_chosen_target():
    samples = [*[(DOOR_KEY, -65)] * 25, *[(PHONE_KEY, -52)] * 25]
    assert calibrate(samples, DOOR_KEY).power_1m == -65
    assert calibrate(samples).power_1m == -52


# --- gathering from the scanner ----------------------------------------------------------------------


async def _finite(items: Iterable[tuple[Frame, int]]) -> AsyncIterator[tuple[Frame, int]]:
    for item in items:
        await asyncio.sleep(0)
        yield item


async def test_gather_keeps_keyed_frames_until_the_source_ends():
    tlm_like = EddystoneEID(b"\x00" * 8, 0)
    got = await gather(_finite([(DOOR, -60), (PHONE, -50), (tlm_like, -70)]), seconds=60)
    assert got == [(DOOR_KEY, -60), (PHONE_KEY, -50), ("eddystone_eid:0000000000000000", -70)]


async def test_gather_returns_what_it_heard_when_the_window_closes():
    release = asyncio.Event()

    async def then_silence() -> AsyncIterator[tuple[Frame, int]]:
        yield DOOR, -61
        yield DOOR, -62
        await release.wait()  # the scanner hears nothing more
        yield DOOR, -99

    assert await gather(then_silence(), seconds=0.05) == [(DOOR_KEY, -61), (DOOR_KEY, -62)]


async def test_frames_from_bleak_decodes_and_forgets_the_device():
    eid_frame = bytes([0x30]) + struct.pack(">b", -20) + PHONE.eid

    def advert(manufacturer: dict[int, bytes], service: dict[str, bytes], rssi: int) -> AdvertisementData:
        return AdvertisementData(None, manufacturer, service, [], None, rssi, ())

    async def scanner() -> AsyncIterator[tuple[BLEDevice, AdvertisementData]]:
        device = BLEDevice("AA:BB:CC:DD:EE:FF", None, None)
        yield device, advert({}, {EDDYSTONE: eid_frame}, -48)
        yield device, advert({0x0006: b"\x01\x09\x20"}, {}, -30)  # foreign: dropped
        yield (
            device,
            advert({0x004C: bytes.fromhex("0215") + SITE_UUID.bytes + bytes.fromhex("00010002c5")}, {}, -66),
        )

    got = [item async for item in frames_from_bleak(scanner())]
    assert got == [(PHONE, -48), (DOOR, -66)]
