"""The measuring core of `beacon-agent calibrate`: the RSSI a beacon or phone model shows at 1 m.

The installer holds one beacon (or phone) still at 1 m, in line of sight of the gateway, for a few tens of
seconds. We gather every sighting in that window, pick the target, and reduce its RSSI readings to one
robust number. Indoor RSSI at a fixed distance is noisy mostly downwards (multipath fades, a hand or body in
the way), so we drop more of the bottom than of the top before averaging, and measure the spread with the
median absolute deviation so a few fades cannot fake a steady hand, nor a few spikes a shaky one.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from beacon_agent.frames import EddystoneEID, Frame, decode, identifier

STRONGEST_EID: Final = "strongest-eid"
EID_PREFIX: Final = "eddystone_eid:"
DEFAULT_SECONDS: Final = 30.0
MIN_SAMPLES: Final = 20
MAX_SPREAD_DB: Final = 5.0
TRIM_LOW: Final = 0.20  # fades and bodies only ever lower a reading, so cut more at the bottom ...
TRIM_HIGH: Final = 0.10  # ... than at the top
RSSI_MIN: Final = -127  # HCI's range for a valid RSSI; BlueZ reports 127 for "not available"
RSSI_MAX: Final = 20
_MAD_TO_SIGMA: Final = 1.4826  # makes the MAD comparable to a standard deviation for normal noise
_HOLD_STILL: Final = "hold the phone/beacon still at 1 m, in line of sight of the gateway, and try again"


class CalibrationError(Exception):
    """The readings cannot give a trustworthy 1 m power; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Calibration:
    target: str  # frames.identifier() of a beacon, or "eddystone_eid:<hex>" of a phone
    power_1m: int  # dBm at 1 m, what the tracker's distance estimate needs
    mean_dbm: float  # the trimmed mean before rounding
    samples: int  # valid readings of the target
    spread_db: float  # robust standard deviation of those readings (1.4826 x MAD)


class _Advertisement(Protocol):
    @property
    def manufacturer_data(self) -> Mapping[int, bytes]: ...
    @property
    def service_data(self) -> Mapping[str, bytes]: ...
    @property
    def rssi(self) -> int: ...


def sighting_key(frame: Frame) -> str | None:
    """The calibration target a frame belongs to: its identifier, or its EID for phones."""
    if isinstance(frame, EddystoneEID):
        return EID_PREFIX + frame.eid.hex()
    return identifier(frame)


async def frames_from_bleak(
    adverts: AsyncIterable[tuple[Any, _Advertisement]],
) -> AsyncIterator[tuple[Frame, int]]:
    """Decode bleak's (device, AdvertisementData) pairs into (frame, rssi); the device is never kept."""
    async for _device, advert in adverts:
        frame = decode(advert.manufacturer_data, advert.service_data)
        if frame is not None:
            yield frame, advert.rssi


async def gather(sightings: AsyncIterable[tuple[Frame, int]], *, seconds: float) -> list[tuple[str, int]]:
    """Collect (target key, rssi) of every keyed frame heard within `seconds`, or until the source ends."""
    collected: list[tuple[str, int]] = []
    try:
        async with asyncio.timeout(seconds):
            async for frame, rssi in sightings:
                key = sighting_key(frame)
                if key is not None:
                    collected.append((key, rssi))
    except TimeoutError:
        pass  # the measuring window is over; that is the normal way out
    return collected


def pick_target(samples: Iterable[tuple[str, int]], wanted: str = STRONGEST_EID) -> str:
    """Choose what to calibrate: `wanted` if it was heard, or for STRONGEST_EID the loudest phone."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, rssi in samples:
        if _valid(rssi):
            by_key[key].append(rssi)
    if wanted != STRONGEST_EID:
        if wanted in by_key:
            return wanted
        heard = ", ".join(sorted(k for k in by_key if not k.startswith(EID_PREFIX))) or "no beacons"
        raise CalibrationError(
            f"{wanted} was not heard (heard: {heard}); check the beacon is switched on and its identifier "
            "is written as `beacon-agent scan` shows it"
        )
    eids = {key: readings for key, readings in by_key.items() if key.startswith(EID_PREFIX)}
    if not eids:
        raise CalibrationError(
            "no Eddystone-EID was heard; open the app on the phone, check it is opted in and advertising, "
            "and keep it at 1 m from the gateway"
        )
    # Loudest by median, not by a single lucky peak; more readings break ties.
    return max(eids, key=lambda key: (statistics.median(eids[key]), len(eids[key])))


def measure(
    target: str,
    readings: Iterable[int],
    *,
    min_samples: int = MIN_SAMPLES,
    max_spread_db: float = MAX_SPREAD_DB,
) -> Calibration:
    """Reduce one target's RSSI readings at 1 m to its calibrated power, or refuse with what to do."""
    valid = sorted(r for r in readings if _valid(r))
    if len(valid) < min_samples:
        raise CalibrationError(
            f"only {len(valid)} readings of {target} (need {min_samples}); measure for longer, "
            f"or {_HOLD_STILL}"
        )
    median = statistics.median(valid)
    spread = _MAD_TO_SIGMA * statistics.median(abs(r - median) for r in valid)
    if spread > max_spread_db:
        raise CalibrationError(
            f"readings of {target} vary too much ({spread:.1f} dB, at most {max_spread_db:.1f} allowed); "
            + _HOLD_STILL
        )
    low = math.floor(len(valid) * TRIM_LOW)
    high = len(valid) - math.floor(len(valid) * TRIM_HIGH)
    mean = statistics.fmean(valid[low:high])
    return Calibration(
        target=target,
        power_1m=math.floor(mean + 0.5),
        mean_dbm=mean,
        samples=len(valid),
        spread_db=spread,
    )


def calibrate(
    samples: Iterable[tuple[str, int]],
    wanted: str = STRONGEST_EID,
    *,
    min_samples: int = MIN_SAMPLES,
    max_spread_db: float = MAX_SPREAD_DB,
) -> Calibration:
    """Pick the target among gathered samples and measure its 1 m power."""
    samples = list(samples)
    target = pick_target(samples, wanted)
    readings = [rssi for key, rssi in samples if key == target]
    return measure(target, readings, min_samples=min_samples, max_spread_db=max_spread_db)


def _valid(rssi: int) -> bool:
    return RSSI_MIN <= rssi <= RSSI_MAX
