"""Decode iBeacon, AltBeacon and Eddystone frames from the fields of bleak's AdvertisementData.

Layouts follow the public specs: Apple's iBeacon layout, altbeacon/spec, and google/eddystone
(eddystone-uid, eddystone-url, eddystone-tlm/tlm-plain.md, eddystone-eid). Whatever is in the air reaches
`decode`, so it answers None for anything foreign, truncated or malformed and never raises.

Length policy: every frame must have exactly its spec'd length, because bytes past it cannot be told apart
from a layout we do not know. The one exception is Eddystone-UID, whose spec lets the two trailing RFU bytes
be absent (18 bytes) or present (20 bytes); their value is ignored, as receivers should for RFU fields.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, TypeAlias
from uuid import UUID

APPLE_COMPANY_ID: Final = 0x004C
EDDYSTONE_SERVICE_UUID: Final = "0000feaa-0000-1000-8000-00805f9b34fb"

# Manufacturer data as bleak gives it, i.e. without the 2-byte company id.
_IBEACON_PREFIX: Final = b"\x02\x15"  # type 0x02, then 0x15 = 21 bytes follow
_IBEACON_LEN: Final = 23
_ALTBEACON_CODE: Final = b"\xbe\xac"
_ALTBEACON_LEN: Final = 24

_EDDYSTONE_UID: Final = 0x00
_EDDYSTONE_URL: Final = 0x10
_EDDYSTONE_TLM: Final = 0x20
_EDDYSTONE_EID: Final = 0x30
EID_FRAME_TYPE: Final = _EDDYSTONE_EID  # for the tracker's own reading of the EID (Tracker.advert)
_UID_LEN_WITHOUT_RFU: Final = 18
_UID_LEN_WITH_RFU: Final = 20
_URL_MIN_LEN: Final = 3  # frame type, tx power, scheme; the encoded URL may be empty
_URL_MAX_LEN: Final = 20  # ... plus at most 17 encoded bytes
_TLM_LEN: Final = 14
_TLM_UNENCRYPTED: Final = 0x00
_TLM_NO_VOLTAGE: Final = 0
_TLM_NO_TEMPERATURE: Final = -0x8000  # 0x8000 read as int16
_EID_LEN: Final = 10
EID_FRAME_LENGTH: Final = _EID_LEN

_IBEACON: Final = struct.Struct(">2x16sHHb")
_ALTBEACON: Final = struct.Struct(">2x16sHHbB")
_UID: Final = struct.Struct(">xb10s6s")
_TLM: Final = struct.Struct(">2xHhII")
_EID: Final = struct.Struct(">xb8s")
_URL_HEAD: Final = struct.Struct(">xbB")

_URL_SCHEMES: Final = ("http://www.", "https://www.", "http://", "https://")
_URL_EXPANSIONS: Final = (
    ".com/",
    ".org/",
    ".edu/",
    ".net/",
    ".info/",
    ".biz/",
    ".gov/",
    ".com",
    ".org",
    ".edu",
    ".net",
    ".info",
    ".biz",
    ".gov",
)
# Text for every byte value; the reserved ones are rejected through _URL_VALID_BYTES before this is used.
_URL_TEXT: Final = tuple(_URL_EXPANSIONS[b] if b < len(_URL_EXPANSIONS) else chr(b) for b in range(0x100))
_URL_VALID_BYTES: Final = bytes(range(len(_URL_EXPANSIONS))) + bytes(range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class IBeacon:
    uuid: UUID
    major: int
    minor: int
    tx_power: int  # measured power at 1 m, dBm


@dataclass(frozen=True, slots=True)
class AltBeacon:
    beacon_id: bytes  # first 16 bytes of the 20-byte beacon id; major and minor are the last 4
    major: int
    minor: int
    ref_rssi: int  # at 1 m, dBm
    mfg_reserved: int


@dataclass(frozen=True, slots=True)
class EddystoneUID:
    namespace: bytes
    instance: bytes
    tx_power: int  # at 0 m, dBm


@dataclass(frozen=True, slots=True)
class EddystoneURL:
    url: str
    tx_power: int  # at 0 m, dBm


@dataclass(frozen=True, slots=True)
class EddystoneTLM:
    voltage_mv: int | None
    temperature_c: float | None
    adv_count: int
    uptime_s: float


@dataclass(frozen=True, slots=True)
class EddystoneEID:
    eid: bytes
    tx_power: int  # at 0 m, dBm


Frame: TypeAlias = IBeacon | AltBeacon | EddystoneUID | EddystoneURL | EddystoneTLM | EddystoneEID


def decode(manufacturer_data: Mapping[int, bytes], service_data: Mapping[str, bytes]) -> Frame | None:
    """Return the beacon frame in one advertisement, or None if it carries none we know."""
    # Eddystone first: the EID is what the product runs on, and BlueZ keeps a device's manufacturer data
    # from earlier advertisements, so stale foreign data must not hide it.
    if service_data:
        data = service_data.get(EDDYSTONE_SERVICE_UUID)
        if data:
            # The EID is most of what is kept, so it is decoded here rather than a call further down.
            if data[0] == _EDDYSTONE_EID and len(data) == _EID_LEN:
                tx_power, eid = _EID.unpack(data)
                return EddystoneEID(eid, tx_power)
            frame = _decode_eddystone(data)
            if frame is not None:
                return frame
    # Length before content: iBeacon and AltBeacon have fixed, different lengths, and most foreign
    # manufacturer data (Apple Continuity, Microsoft, ...) already fails that test.
    for company_id, data in manufacturer_data.items():
        size = len(data)
        if size == _IBEACON_LEN:
            if company_id == APPLE_COMPANY_ID and data[:2] == _IBEACON_PREFIX:
                uuid_bytes, major, minor, tx_power = _IBEACON.unpack(data)
                return IBeacon(_uuid(uuid_bytes), major, minor, tx_power)
        elif size == _ALTBEACON_LEN and data[:2] == _ALTBEACON_CODE:
            return AltBeacon(*_ALTBEACON.unpack(data))
    return None


# A site's beacons repeat a handful of UUIDs many times a second, and building a UUID (or its text) costs more
# than the rest of the decoding; UUIDs are immutable, so one object can serve every frame. Bounded, as foreign
# iBeacons may bring any number of UUIDs.
@lru_cache(maxsize=256)
def _uuid(uuid_bytes: bytes) -> UUID:
    return UUID(bytes=uuid_bytes)


@lru_cache(maxsize=256)
def _uuid_text(uuid: UUID) -> str:
    return str(uuid)


def _decode_eddystone(data: bytes) -> Frame | None:
    kind = data[0]
    size = len(data)
    if kind == _EDDYSTONE_EID:
        if size != _EID_LEN:
            return None
        tx_power, eid = _EID.unpack(data)
        return EddystoneEID(eid, tx_power)
    if kind == _EDDYSTONE_UID:
        if size != _UID_LEN_WITHOUT_RFU and size != _UID_LEN_WITH_RFU:
            return None
        tx_power, namespace, instance = _UID.unpack_from(data)
        return EddystoneUID(namespace, instance, tx_power)
    if kind == _EDDYSTONE_TLM:
        if size != _TLM_LEN or data[1] != _TLM_UNENCRYPTED:
            return None  # other versions, e.g. 0x01 encrypted eTLM, we cannot read
        voltage, temperature, adv_count, ticks = _TLM.unpack(data)
        return EddystoneTLM(
            None if voltage == _TLM_NO_VOLTAGE else voltage,
            None if temperature == _TLM_NO_TEMPERATURE else temperature / 256,
            adv_count,
            ticks / 10,
        )
    if kind == _EDDYSTONE_URL:
        return _decode_url(data)
    return None


def _decode_url(data: bytes) -> EddystoneURL | None:
    if not _URL_MIN_LEN <= len(data) <= _URL_MAX_LEN:
        return None
    tx_power, scheme = _URL_HEAD.unpack_from(data)
    if scheme >= len(_URL_SCHEMES):
        return None
    encoded = data[_URL_MIN_LEN:]
    if encoded.translate(None, _URL_VALID_BYTES):
        return None  # holds a byte the spec reserves: 0x0E-0x20 or 0x7F-0xFF
    return EddystoneURL(_URL_SCHEMES[scheme] + "".join([_URL_TEXT[b] for b in encoded]), tx_power)


def identifier(frame: Frame) -> str | None:
    """Return a stable text key for a fixed-identity beacon frame, None for EID, URL and TLM frames."""
    if isinstance(frame, IBeacon):
        return f"ibeacon:{_uuid_text(frame.uuid)}/{frame.major}/{frame.minor}"
    if isinstance(frame, AltBeacon):
        return f"altbeacon:{frame.beacon_id.hex()}/{frame.major}/{frame.minor}"
    if isinstance(frame, EddystoneUID):
        return f"eddystone_uid:{frame.namespace.hex()}/{frame.instance.hex()}"
    return None
