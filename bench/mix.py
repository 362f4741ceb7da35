"""The advertisement mix of a busy street, as bleak hands it to the agent and as raw AD structures.

Deterministic (seeded), so every run and every machine sees the same traffic. Each advertisement exists in
two forms built from the same bytes: bleak's (manufacturer data keyed by company id without it in the
payload, service data keyed by 128-bit UUID string) for the agent, and the over-the-air AD structures
(length, type, value ...) that a raw parser such as beacontools takes.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from uuid import UUID

EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"
APPLE = 0x004C

# Share of the mix; the part names are the rows of the report.
PARTS: tuple[tuple[str, float], ...] = (
    ("Apple Continuity (0x004C, types 0x10/0x0C/0x07/0x12/0x0F/0x09/0x05)", 0.40),
    ("other manufacturer data (Microsoft, Samsung, Google, Garmin, random ids)", 0.22),
    ("foreign service data (Fast Pair, Exposure Notification, Tile)", 0.05),
    ("other parties' beacons (iBeacon, AltBeacon, Eddystone-URL/TLM), not watched", 0.03),
    ("Eddystone-EID from phones", 0.25),
    ("the site's own beacons (iBeacon, Eddystone-UID), watched", 0.05),
)
FOREIGN_PARTS = 4  # the first four are foreign: 70 %
# A dense street: 70 % phones' EIDs, 25 % foreign (in the typical mix's proportions), 5 % the site's beacons.
_FOREIGN_SHARE = sum(share for _, share in PARTS[:FOREIGN_PARTS])
DENSE_SHARES: tuple[float, ...] = (
    *(share / _FOREIGN_SHARE * 0.25 for _, share in PARTS[:FOREIGN_PARTS]),
    0.70,
    0.05,
)


def _uuid128(short: int) -> str:
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


@dataclass(slots=True)
class Advertisement:
    manufacturer_data: dict[int, bytes]
    service_data: dict[str, bytes]
    rssi: float
    raw: bytes  # the AD structures as received over the air


@dataclass(slots=True)
class Street:
    """Builds advertisements; `watched` are the identifiers of the site's own beacons."""

    phones: int = 1_000
    seed: int = 20240601
    rng: random.Random = field(init=False)
    eids: list[bytes] = field(init=False)
    phone_rssi: list[float] = field(init=False)
    site_ibeacons: list[bytes] = field(init=False)
    site_uids: list[bytes] = field(init=False)
    watched: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.eids = [self.rng.randbytes(8) for _ in range(self.phones)]
        # Where each phone is: most pass at a distance, some come close enough to enter.
        self.phone_rssi = [self.rng.uniform(-100.0, -55.0) for _ in range(self.phones)]
        site_uuid = UUID("b9407f30-f5f8-466e-aff9-25556b57fe6d")
        self.site_ibeacons = [
            struct.pack(">BB16sHHb", 0x02, 0x15, site_uuid.bytes, 1, minor, -59) for minor in range(1, 7)
        ]
        namespace = bytes.fromhex("edd1ebeac04e5defa017")
        self.site_uids = [
            struct.pack(">Bb10s6s", 0x00, -18, namespace, instance.to_bytes(6, "big")) + b"\x00\x00"
            for instance in range(1, 5)
        ]
        self.watched = frozenset(
            [f"ibeacon:{site_uuid}/1/{minor}" for minor in range(1, 7)]
            + [f"eddystone_uid:{namespace.hex()}/{instance:012x}" for instance in range(1, 5)]
        )

    def build(
        self, count: int, shares: tuple[float, ...] | None = None
    ) -> tuple[list[Advertisement], list[int]]:
        """`count` advertisements in random order, and how many of each part of PARTS (in PARTS' shares, or
        the ones given)."""
        weights = list(shares) if shares is not None else [share for _, share in PARTS]
        kinds = self.rng.choices(range(len(PARTS)), weights, k=count)
        makers = (
            self._continuity,
            self._other_manufacturer,
            self._foreign_service,
            self._other_beacon,
            self._phone,
            self._site_beacon,
        )
        ads = [makers[kind]() for kind in kinds]
        return ads, [kinds.count(kind) for kind in range(len(PARTS))]

    # The parts

    def _continuity(self) -> Advertisement:
        r = self.rng
        kind = r.choice((0x10, 0x10, 0x10, 0x0C, 0x07, 0x12, 0x0F, 0x09, 0x05, 0x23))
        if kind == 0x23:  # Nearby Info + Handoff in one: 23 bytes, the length of an iBeacon
            data = b"\x10\x05" + r.randbytes(5) + b"\x0c\x0e" + r.randbytes(14)
        else:
            size = {0x10: 5, 0x0C: 14, 0x07: 25, 0x12: 25, 0x0F: 5, 0x09: 6, 0x05: 18}[kind]
            data = bytes((kind, size)) + r.randbytes(size)
        return self._ad({APPLE: data}, {}, flags=r.random() < 0.5)

    def _other_manufacturer(self) -> Advertisement:
        r = self.rng
        company = r.choice((0x0006, 0x0006, 0x0075, 0x0075, 0x00E0, 0x0087, 0x0157, r.randrange(0x10000)))
        data = r.randbytes(r.randrange(0, 27))
        service: dict[str, bytes] = {}
        if company == 0x0075 and r.random() < 0.3:  # Samsung devices often add service data too
            service[_uuid128(0xFD5A)] = r.randbytes(r.randrange(2, 12))
        return self._ad({company: data}, service)

    def _foreign_service(self) -> Advertisement:
        r = self.rng
        short, size = r.choice(((0xFE2C, 3), (0xFE2C, 9), (0xFD6F, 20), (0xFEED, 10)))
        return self._ad({}, {_uuid128(short): r.randbytes(size)})

    def _other_beacon(self) -> Advertisement:
        r = self.rng
        pick = r.randrange(4)
        if pick == 0:
            data = struct.pack(">BB16sHHb", 0x02, 0x15, r.randbytes(16), r.randrange(65536), 7, -60)
            return self._ad({APPLE: data}, {})
        if pick == 1:
            data = struct.pack(">2s16sHHbB", b"\xbe\xac", r.randbytes(16), 1, 2, -59, 0)
            return self._ad({0x0118: data}, {})
        if pick == 2:
            return self._ad({}, {EDDYSTONE: bytes.fromhex("10eb03676f6f2e676c2f53367a543650")})
        return self._ad({}, {EDDYSTONE: struct.pack(">BBHhII", 0x20, 0, 3000, 0x1980, 100, 10_000)})

    def _phone(self) -> Advertisement:
        r = self.rng
        n = r.randrange(self.phones)
        rssi = round(self.phone_rssi[n] + r.gauss(0.0, 4.0))
        return self._ad({}, {EDDYSTONE: b"\x30\xee" + self.eids[n]}, rssi=rssi)

    def _site_beacon(self) -> Advertisement:
        r = self.rng
        if r.random() < 0.6:
            return self._ad({APPLE: r.choice(self.site_ibeacons)}, {})
        return self._ad({}, {EDDYSTONE: r.choice(self.site_uids)})

    def _ad(
        self,
        manufacturer: dict[int, bytes],
        service: dict[str, bytes],
        *,
        rssi: float | None = None,
        flags: bool = True,
    ) -> Advertisement:
        raw = bytearray(b"\x02\x01\x06" if flags else b"")
        for company, data in manufacturer.items():
            raw += bytes((len(data) + 3, 0xFF)) + company.to_bytes(2, "little") + data
        for uuid, data in service.items():
            short = int(uuid[4:8], 16).to_bytes(2, "little")
            if uuid == EDDYSTONE:
                raw += b"\x03\x03" + short  # Eddystone's spec wants the UUID listed as well
            raw += bytes((len(data) + 3, 0x16)) + short + data
        if rssi is None:
            rssi = float(self.rng.randrange(-100, -40))
        return Advertisement(manufacturer, service, float(rssi), bytes(raw))
