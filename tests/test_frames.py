"""Frame decoding against byte layouts written out from the public specs, foreign traffic, and fuzzing.

Specs: Apple iBeacon; altbeacon/spec README.md; google/eddystone eddystone-uid/README.md,
eddystone-url/README.md, eddystone-tlm/tlm-plain.md and eddystone-eid/README.md. Known-good frames are
spelled out as hex here, and property tests assemble frames with struct.pack, so no test relies on an
encoder of ours.
"""

from __future__ import annotations

import struct
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon_agent.frames import (
    AltBeacon,
    EddystoneEID,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    Frame,
    IBeacon,
    decode,
    identifier,
)

APPLE = 0x004C
RADIUS_NETWORKS = 0x0118
MICROSOFT = 0x0006
EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"
FAST_PAIR = "0000fe2c-0000-1000-8000-00805f9b34fb"
EXPOSURE_NOTIFICATION = "0000fd6f-0000-1000-8000-00805f9b34fb"
FRAME_TYPES = (IBeacon, AltBeacon, EddystoneUID, EddystoneURL, EddystoneTLM, EddystoneEID)

# Manufacturer data is given as bleak gives it: without the 2-byte company id.
IBEACON = bytes.fromhex(
    "02 15"  # iBeacon type, 21 bytes follow
    "b9407f30f5f8466eaff925556b57fe6d"  # proximity UUID
    "3039"  # major 12345
    "0007"  # minor 7
    "c5"  # measured power -59 dBm
)
ALTBEACON = bytes.fromhex(
    "be ac"  # beacon code
    "2f234454cf6d4a0fadf2f4911ba9ffa6"  # first 16 bytes of the beacon id
    "0001"  # major 1
    "0002"  # minor 2
    "c5"  # reference RSSI -59 dBm
    "7f"  # mfg reserved
)
EDDYSTONE_UID = bytes.fromhex(
    "00"  # frame type UID
    "ee"  # tx power at 0 m, -18 dBm
    "edd1ebeac04e5defa017"  # namespace
    "0123456789ab"  # instance
    "0000"  # RFU
)
EDDYSTONE_URL = bytes.fromhex(
    "10"  # frame type URL
    "eb"  # tx power -21 dBm
    "03"  # "https://"
    "676f6f2e676c2f5336 7a54 3650"  # "goo.gl/S6zT6P"
)
EDDYSTONE_TLM = bytes.fromhex(
    "20"  # frame type TLM
    "00"  # version: unencrypted
    "0bb8"  # 3000 mV
    "1980"  # 25.5 degrees C
    "00000064"  # 100 advertisements
    "00002710"  # 10000 ticks of 0.1 s
)
EDDYSTONE_EID = bytes.fromhex(
    "30"  # frame type EID
    "e7"  # tx power -25 dBm
    "0123456789abcdef"  # ephemeral id
)


# Known-good frames


def test_ibeacon() -> None:
    assert decode({APPLE: IBEACON}, {}) == IBeacon(
        uuid=UUID("b9407f30-f5f8-466e-aff9-25556b57fe6d"), major=12345, minor=7, tx_power=-59
    )


def test_altbeacon() -> None:
    assert decode({RADIUS_NETWORKS: ALTBEACON}, {}) == AltBeacon(
        beacon_id=bytes.fromhex("2f234454cf6d4a0fadf2f4911ba9ffa6"),
        major=1,
        minor=2,
        ref_rssi=-59,
        mfg_reserved=0x7F,
    )


def test_altbeacon_under_any_company_id() -> None:
    """AltBeacon lets any manufacturer use its own company id, Apple's included."""
    assert isinstance(decode({APPLE: ALTBEACON}, {}), AltBeacon)
    assert isinstance(decode({0xFFFF: ALTBEACON}, {}), AltBeacon)


def test_eddystone_uid() -> None:
    expected = EddystoneUID(
        namespace=bytes.fromhex("edd1ebeac04e5defa017"), instance=bytes.fromhex("0123456789ab"), tx_power=-18
    )
    assert decode({}, {EDDYSTONE: EDDYSTONE_UID}) == expected
    # The spec allows older beacons to leave out the two RFU bytes; their value is not checked.
    assert decode({}, {EDDYSTONE: EDDYSTONE_UID[:18]}) == expected
    assert decode({}, {EDDYSTONE: EDDYSTONE_UID[:18] + b"\xff\xff"}) == expected


def test_eddystone_eid() -> None:
    assert decode({}, {EDDYSTONE: EDDYSTONE_EID}) == EddystoneEID(
        eid=bytes.fromhex("0123456789abcdef"), tx_power=-25
    )


def test_eddystone_tlm() -> None:
    assert decode({}, {EDDYSTONE: EDDYSTONE_TLM}) == EddystoneTLM(
        voltage_mv=3000, temperature_c=25.5, adv_count=100, uptime_s=1000.0
    )


def test_eddystone_tlm_unsupported_voltage_and_temperature() -> None:
    frame = bytes.fromhex("20 00 0000 8000 ffffffff ffffffff")
    assert decode({}, {EDDYSTONE: frame}) == EddystoneTLM(
        voltage_mv=None, temperature_c=None, adv_count=2**32 - 1, uptime_s=429496729.5
    )


@pytest.mark.parametrize(
    ("raw", "celsius"),
    [("ff80", -0.5), ("0001", 1 / 256), ("7fff", 127 + 255 / 256), ("8001", -128 + 1 / 256), ("0000", 0.0)],
)
def test_eddystone_tlm_temperature_is_signed_8_8(raw: str, celsius: float) -> None:
    frame = decode({}, {EDDYSTONE: bytes.fromhex(f"20 00 0c1c {raw} 00000001 00000002")})
    assert isinstance(frame, EddystoneTLM)
    assert frame.temperature_c == celsius
    assert frame.voltage_mv == 3100


@pytest.mark.parametrize(
    ("hex_frame", "url"),
    [
        ("10 eb 03 676f6f2e676c2f53367a543650", "https://goo.gl/S6zT6P"),
        ("10 f4 00 6578616d706c65 00", "http://www.example.com/"),
        ("10 f4 01 6e6168626172 01 68696c6665", "https://www.nahbar.org/hilfe"),
        ("10 00 02 63686172697479 0b", "http://charity.info"),
        ("10 00 02 61 02 62 03 63 04 64 05 65 06", "http://a.edu/b.net/c.info/d.biz/e.gov/"),
        ("10 00 03 61 07 62 08 63 09 64 0a 65 0c 66 0d", "https://a.comb.orgc.edud.nete.bizf.gov"),
        ("10 00 02", "http://"),  # the spec allows 0 encoded bytes
        ("10 00 02 21 7e 303132333435363738393a3b3c3d3e", "http://!~0123456789:;<=>"),  # 17 bytes
    ],
)
def test_eddystone_url(hex_frame: str, url: str) -> None:
    frame = decode({}, {EDDYSTONE: bytes.fromhex(hex_frame)})
    assert isinstance(frame, EddystoneURL)
    assert frame.url == url
    assert frame.tx_power == struct.unpack("b", bytes.fromhex(hex_frame)[1:2])[0]


@pytest.mark.parametrize(
    "hex_frame",
    [
        "10 00 04 61",  # scheme prefix 0x04 is not defined
        "10 00 ff 61",
        "10 00 02 61 0e",  # 0x0E..0x20 reserved
        "10 00 02 61 20 62",  # a space
        "10 00 02 7f",  # 0x7F..0xFF reserved
        "10 00 02 61 ff",
        "10 00 02 303132333435363738393a3b3c3d3e3f4041",  # 18 encoded bytes, one past the maximum
    ],
)
def test_eddystone_url_invalid(hex_frame: str) -> None:
    assert decode({}, {EDDYSTONE: bytes.fromhex(hex_frame)}) is None


@pytest.mark.parametrize(
    ("frame", "key"),
    [
        (
            IBeacon(UUID("b9407f30-f5f8-466e-aff9-25556b57fe6d"), 12345, 7, -59),
            "ibeacon:b9407f30-f5f8-466e-aff9-25556b57fe6d/12345/7",
        ),
        (
            AltBeacon(bytes.fromhex("2f234454cf6d4a0fadf2f4911ba9ffa6"), 1, 2, -59, 0),
            "altbeacon:2f234454cf6d4a0fadf2f4911ba9ffa6/1/2",
        ),
        (
            EddystoneUID(bytes.fromhex("edd1ebeac04e5defa017"), bytes.fromhex("0123456789ab"), -18),
            "eddystone_uid:edd1ebeac04e5defa017/0123456789ab",
        ),
        (EddystoneEID(bytes.fromhex("0123456789abcdef"), -25), None),
        (EddystoneURL("https://goo.gl/S6zT6P", -21), None),
        (EddystoneTLM(3000, 25.5, 100, 1000.0), None),
    ],
)
def test_identifier(frame: Frame, key: str | None) -> None:
    """Only beacons with a fixed identity (the site's own) get a key; EIDs never do."""
    assert identifier(frame) == key


def test_ibeacons_with_more_uuids_than_the_decoder_caches_keep_their_own() -> None:
    """Decoding reuses UUID objects for beacons seen again; a street of foreign UUIDs must not mix them up."""
    uuids = [UUID(int=n * 0x1F2E3D4C5B6A79880123456789ABCDEF % 2**128) for n in range(1, 1_001)]
    for _ in range(2):
        for uuid in uuids:
            frame = decode({APPLE: struct.pack(">BB16sHHb", 0x02, 0x15, uuid.bytes, 1, 2, -59)}, {})
            assert frame == IBeacon(uuid, 1, 2, -59)
            assert identifier(frame) == f"ibeacon:{uuid}/1/2"


# Which frame wins when an advertisement carries several


def test_eddystone_before_manufacturer_data() -> None:
    """BlueZ keeps a device's older manufacturer data, so it must not hide a current EID."""
    assert isinstance(decode({APPLE: IBEACON}, {EDDYSTONE: EDDYSTONE_EID}), EddystoneEID)


def test_first_beacon_among_several_company_ids() -> None:
    continuity = bytes.fromhex("1005031c8e6c8a")
    assert isinstance(decode({APPLE: continuity, RADIUS_NETWORKS: ALTBEACON}, {}), AltBeacon)


def test_foreign_eddystone_data_falls_through_to_manufacturer_data() -> None:
    assert isinstance(decode({APPLE: IBEACON}, {EDDYSTONE: b"\x40\x00"}), IBeacon)


# Foreign traffic

FOREIGN_MANUFACTURER_DATA = [
    # Apple Continuity: type, length, payload.
    pytest.param(APPLE, "10 05 031c8e6c8a", id="apple-nearby-info"),
    pytest.param(
        APPLE, "07 19 01 0e20 22f58f01 00 0f 2a1cd1e1b7a4f3c05e69d2a7b9c3017f", id="apple-proximity-pair"
    ),
    pytest.param(APPLE, "0c 0e 00 8c31 6a45f10a9c2e1b7d4f3a5b", id="apple-handoff"),
    pytest.param(APPLE, "12 19 10 b5a7c3e0f1d2a4b6c8e0f2a4b6c8e0f2a4b6c8e0c1d2 02 11", id="apple-find-my"),
    pytest.param(APPLE, "0f 05 c0 1d 44b2c1", id="apple-nearby-action"),
    # Nearby Info followed by Handoff: 23 bytes, the length of an iBeacon.
    pytest.param(APPLE, "10 05 031c8e6c8a 0c 0e 00 8c31 6a45f10a9c2e1b7d4f3a5b", id="apple-23-bytes"),
    pytest.param(APPLE, "", id="apple-empty"),
    pytest.param(APPLE, "02", id="apple-ibeacon-type-only"),
    pytest.param(APPLE, "02 16" + "00" * 21, id="apple-ibeacon-wrong-length-byte"),
    # Microsoft Swift Pair (beacon id 0x03, sub-scenario 0x00, reserved RSSI 0x80, display name).
    pytest.param(MICROSOFT, "03 00 80 537572666163652050656e", id="microsoft-swift-pair"),
    pytest.param(MICROSOFT, "01 09 20 02 5dd6f1a8b7c3e0f1d2a4b6c8e0f2a4b6c8e0f2a4b6c8e0", id="microsoft-cdp"),
    # An iBeacon payload under another company id is not an iBeacon.
    pytest.param(0x0059, IBEACON.hex(), id="ibeacon-under-nordic"),
    pytest.param(0xFFFF, "be ad" + "00" * 22, id="wrong-beacon-code"),
]


@pytest.mark.parametrize(("company_id", "hex_data"), FOREIGN_MANUFACTURER_DATA)
def test_foreign_manufacturer_data(company_id: int, hex_data: str) -> None:
    assert decode({company_id: bytes.fromhex(hex_data)}, {}) is None


FOREIGN_SERVICE_DATA = [
    pytest.param(FAST_PAIR, "2aa2e4", id="google-fast-pair"),
    pytest.param(EXPOSURE_NOTIFICATION, "00" * 16 + "40080000", id="exposure-notification"),
    pytest.param(FAST_PAIR, EDDYSTONE_EID.hex(), id="eid-under-another-uuid"),
    pytest.param(EDDYSTONE.upper(), EDDYSTONE_EID.hex(), id="eddystone-uuid-uppercase"),
    pytest.param("feaa", EDDYSTONE_EID.hex(), id="eddystone-uuid-short"),
    pytest.param(EDDYSTONE, "", id="eddystone-empty"),
    pytest.param(EDDYSTONE, "40 00 0102030405060708", id="eddystone-unknown-frame-type"),
    pytest.param(EDDYSTONE, "31 e7 0123456789abcdef", id="eddystone-reserved-low-bits"),
    pytest.param(EDDYSTONE, "ff", id="eddystone-ff"),
    # eTLM: version 0x01, 12 bytes encrypted TLM, 2-byte salt, 2-byte MIC.
    pytest.param(EDDYSTONE, "20 01 a1b2c3d4e5f60718293a4b5c 6d7e 8f90", id="eddystone-etlm"),
    pytest.param(EDDYSTONE, "20 02 0bb8 1980 00000064 00002710", id="eddystone-tlm-version-2"),
]


@pytest.mark.parametrize(("uuid", "hex_data"), FOREIGN_SERVICE_DATA)
def test_foreign_service_data(uuid: str, hex_data: str) -> None:
    assert decode({}, {uuid: bytes.fromhex(hex_data)}) is None


def test_nothing() -> None:
    assert decode({}, {}) is None


# Truncated and overlong frames

VALID = [
    pytest.param({APPLE: IBEACON}, id="ibeacon"),
    pytest.param({RADIUS_NETWORKS: ALTBEACON}, id="altbeacon"),
    pytest.param({EDDYSTONE: EDDYSTONE_UID}, id="eddystone-uid"),
    pytest.param({EDDYSTONE: EDDYSTONE_URL}, id="eddystone-url"),
    pytest.param({EDDYSTONE: EDDYSTONE_TLM}, id="eddystone-tlm"),
    pytest.param({EDDYSTONE: EDDYSTONE_EID}, id="eddystone-eid"),
]
MINIMUM_LENGTH = {
    IBEACON: 23,
    ALTBEACON: 24,
    EDDYSTONE_UID: 18,
    EDDYSTONE_URL: 3,  # longer prefixes of a URL frame are shorter, valid URLs
    EDDYSTONE_TLM: 14,
    EDDYSTONE_EID: 10,
}


def _decode_one(key: int | str, data: bytes) -> Frame | None:
    return decode({key: data}, {}) if isinstance(key, int) else decode({}, {key: data})


@pytest.mark.parametrize("advertisement", VALID)
def test_every_prefix_below_minimum_length_is_rejected(advertisement: dict[int | str, bytes]) -> None:
    ((key, data),) = advertisement.items()
    assert _decode_one(key, data) is not None
    for size in range(MINIMUM_LENGTH[data]):
        assert _decode_one(key, data[:size]) is None, size


@pytest.mark.parametrize(
    ("key", "data"),
    [
        pytest.param(APPLE, IBEACON + b"\x00", id="ibeacon"),
        pytest.param(RADIUS_NETWORKS, ALTBEACON + b"\x00", id="altbeacon"),
        pytest.param(EDDYSTONE, EDDYSTONE_UID[:19], id="eddystone-uid-one-rfu-byte"),
        pytest.param(EDDYSTONE, EDDYSTONE_UID + b"\x00", id="eddystone-uid"),
        pytest.param(EDDYSTONE, EDDYSTONE_TLM + b"\x00", id="eddystone-tlm"),
        pytest.param(EDDYSTONE, EDDYSTONE_EID + b"\x00", id="eddystone-eid"),
    ],
)
def test_trailing_bytes_are_rejected_where_the_spec_has_no_rfu(key: int | str, data: bytes) -> None:
    assert _decode_one(key, data) is None


# Properties

company_ids = st.integers(min_value=0, max_value=0xFFFF)
payloads = st.binary(max_size=31)
# Random bytes seldom look like a frame, so also lead with the bytes the decoder branches on.
frame_like = st.builds(
    bytes.__add__,
    st.sampled_from([b"\x02\x15", b"\xbe\xac", b"\x00", b"\x10", b"\x20\x00", b"\x30"]),
    payloads,
)
service_uuids = st.one_of(st.just(EDDYSTONE), st.uuids().map(str), st.text(max_size=40))


@settings(max_examples=500)
@given(
    manufacturer_data=st.dictionaries(company_ids, st.one_of(payloads, frame_like), max_size=4),
    service_data=st.dictionaries(service_uuids, st.one_of(payloads, frame_like), max_size=4),
)
def test_decode_never_raises(manufacturer_data: dict[int, bytes], service_data: dict[str, bytes]) -> None:
    frame = decode(manufacturer_data, service_data)
    assert frame is None or isinstance(frame, FRAME_TYPES)
    if frame is not None:
        identifier(frame)


int8 = st.integers(min_value=-128, max_value=127)
uint8 = st.integers(min_value=0, max_value=0xFF)
uint16 = st.integers(min_value=0, max_value=0xFFFF)
int16 = st.integers(min_value=-0x8000, max_value=0x7FFF)
uint32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


@given(uuid=st.uuids(), major=uint16, minor=uint16, tx_power=int8)
def test_ibeacon_round_trip(uuid: UUID, major: int, minor: int, tx_power: int) -> None:
    data = struct.pack(">BB16sHHb", 0x02, 0x15, uuid.bytes, major, minor, tx_power)
    assert decode({APPLE: data}, {}) == IBeacon(uuid, major, minor, tx_power)


@given(
    company_id=company_ids,
    beacon_id=st.binary(min_size=16, max_size=16),
    major=uint16,
    minor=uint16,
    ref_rssi=int8,
    reserved=uint8,
)
def test_altbeacon_round_trip(
    company_id: int, beacon_id: bytes, major: int, minor: int, ref_rssi: int, reserved: int
) -> None:
    data = struct.pack(">2s16sHHbB", b"\xbe\xac", beacon_id, major, minor, ref_rssi, reserved)
    assert decode({company_id: data}, {}) == AltBeacon(beacon_id, major, minor, ref_rssi, reserved)


@given(
    tx_power=int8,
    namespace=st.binary(min_size=10, max_size=10),
    instance=st.binary(min_size=6, max_size=6),
    rfu=st.sampled_from([b"", b"\x00\x00"]),
)
def test_eddystone_uid_round_trip(tx_power: int, namespace: bytes, instance: bytes, rfu: bytes) -> None:
    data = struct.pack(">Bb10s6s", 0x00, tx_power, namespace, instance) + rfu
    assert decode({}, {EDDYSTONE: data}) == EddystoneUID(namespace, instance, tx_power)


@given(tx_power=int8, eid=st.binary(min_size=8, max_size=8))
def test_eddystone_eid_round_trip(tx_power: int, eid: bytes) -> None:
    data = struct.pack(">Bb8s", 0x30, tx_power, eid)
    assert decode({}, {EDDYSTONE: data}) == EddystoneEID(eid, tx_power)


@given(voltage=uint16, temperature=int16, adv_count=uint32, ticks=uint32)
def test_eddystone_tlm_round_trip(voltage: int, temperature: int, adv_count: int, ticks: int) -> None:
    data = struct.pack(">BBHhII", 0x20, 0x00, voltage, temperature, adv_count, ticks)
    assert decode({}, {EDDYSTONE: data}) == EddystoneTLM(
        voltage_mv=None if voltage == 0 else voltage,
        temperature_c=None if temperature == -0x8000 else temperature / 256,
        adv_count=adv_count,
        uptime_s=ticks / 10,
    )


# The tables of eddystone-url/README.md.
SCHEMES = ["http://www.", "https://www.", "http://", "https://"]
EXPANSIONS = [".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/"]
EXPANSIONS += [".com", ".org", ".edu", ".net", ".info", ".biz", ".gov"]
url_bytes = st.one_of(
    st.integers(min_value=0x00, max_value=0x0D), st.integers(min_value=0x21, max_value=0x7E)
)


@given(tx_power=int8, scheme=st.integers(min_value=0, max_value=3), encoded=st.lists(url_bytes, max_size=17))
def test_eddystone_url_round_trip(tx_power: int, scheme: int, encoded: list[int]) -> None:
    data = struct.pack(">BbB", 0x10, tx_power, scheme) + bytes(encoded)
    url = SCHEMES[scheme] + "".join(EXPANSIONS[b] if b <= 0x0D else chr(b) for b in encoded)
    assert decode({}, {EDDYSTONE: data}) == EddystoneURL(url, tx_power)
