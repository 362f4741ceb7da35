"""One continuous bleak scan per adapter, kept alive by a watchdog, backoff and adapter power-cycles.

The agent runs unattended for months, so BlueZ trouble never escapes `Scanner.run`: a start that fails
(`org.bluez.Error.InProgress`, bluetoothd restarting, the D-Bus socket gone) is retried with exponential
backoff and jitter, a scan that went silent for `watchdog_s` is restarted, and repeated failures power-cycle
the adapter. Scanning is passive with or-patterns where BlueZ offers the AdvertisementMonitor API and falls
back to active scanning where it does not. Consumers get the advertisement's data, never the device or its
MAC address.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.bluezdbus.utils import get_dbus_authenticator
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from beacon_agent.bluez_check import FaultKind, classify

logger = logging.getLogger(__name__)

ScanMode = Literal["passive", "active"]
ScanState = Literal["starting", "scanning", "failing", "stopped"]
OnAdvertisement = Callable[[Mapping[int, bytes], Mapping[str, bytes], int, float], None]
"""(manufacturer_data, service_data, rssi, monotonic_now): deliberately without the device or address."""
DetectionCallback = Callable[[BLEDevice, AdvertisementData], None]


class BleakScannerLike(Protocol):
    """The part of `bleak.BleakScanner` the scanner uses."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ScannerFactory = Callable[[DetectionCallback, ScanMode, str], BleakScannerLike]
PowerCycle = Callable[[str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_WATCHDOG_S: Final = 90.0
DEFAULT_BACKOFF_INITIAL_S: Final = 1.0
DEFAULT_BACKOFF_MAX_S: Final = 120.0
DEFAULT_JITTER: Final = 0.25
DEFAULT_POWER_CYCLE_AFTER: Final = 3
DEFAULT_OPERATION_TIMEOUT_S: Final = 15.0
_MAX_BACKOFF_EXPONENT: Final = 30

BLUEZ_SERVICE: Final = "org.bluez"
ADAPTER_INTERFACE: Final = "org.bluez.Adapter1"
PROPERTIES_INTERFACE: Final = "org.freedesktop.DBus.Properties"

# In passive mode the controller itself filters, so the Pi is only woken by frames the tracker may keep.
OR_PATTERNS: Final = (
    # Eddystone (phones' EIDs, the site's UID/URL/TLM beacons): 16-bit service data 0xFEAA, little-endian.
    OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe"),
    # iBeacon: Apple's company id 0x004C (little-endian), type 0x02, length 0x15.
    OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x02\x15"),
    # AltBeacon: the beacon code 0xBEAC follows whatever company id the maker uses.
    OrPattern(2, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xbe\xac"),
)

# D-Bus errors that mean "this BlueZ has no usable AdvertisementMonitor API", not "try again later".
_PASSIVE_UNSUPPORTED: Final = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.UnknownInterface",
        "org.bluez.Error.NotSupported",
    }
)


@dataclass(frozen=True, slots=True)
class ScannerStats:
    """The scanner's health, for the heartbeat and `beacon-agent doctor`."""

    adverts: int
    restarts: int
    power_cycles: int
    mode: ScanMode  # "active" once BlueZ turned passive scanning down; stays so until the agent restarts
    running: bool
    last_error: str | None  # the latest trouble, kept after recovery so `doctor` can still show it
    start_failures: int
    watchdog_expiries: int
    callback_errors: int
    state: ScanState  # failing: the scan is down after `failures` failures in a row, and being retried
    failures: int  # failed starts, and scans that heard nothing for the watchdog's time, in a row
    error_kind: FaultKind | None  # the kind of `last_error`


class ScanFailed(Exception):
    """The scan failed to start `attempts` times in a row and the caller asked not to go on."""

    def __init__(self, kind: FaultKind, last_error: str | None, attempts: int) -> None:
        super().__init__(f"the scan failed to start {attempts} times in a row: {last_error}")
        self.kind = kind
        self.last_error = last_error
        self.attempts = attempts


def bleak_scanner_factory(callback: DetectionCallback, mode: ScanMode, adapter: str) -> BleakScannerLike:
    """Build the real `BleakScanner` for one adapter and mode."""
    bluez: BlueZScannerArgs = {"adapter": adapter}
    if mode == "passive":
        bluez["or_patterns"] = list(OR_PATTERNS)
    else:
        # BlueZ would otherwise report each device once, and RSSI would freeze for the tracker.
        bluez["filters"] = {"DuplicateData": False}
    return BleakScanner(callback, scanning_mode=mode, bluez=bluez)


async def power_cycle_adapter(adapter: str) -> None:
    """Switch a BlueZ adapter off and on again over D-Bus (org.bluez.Adapter1.Powered)."""
    bus = MessageBus(bus_type=BusType.SYSTEM, auth=get_dbus_authenticator())
    # Disconnect even when connect() fails: the constructor already holds the socket.
    try:
        await bus.connect()
        for powered in (False, True):
            reply = await bus.call(
                Message(
                    destination=BLUEZ_SERVICE,
                    path=f"/org/bluez/{adapter}",
                    interface=PROPERTIES_INTERFACE,
                    member="Set",
                    signature="ssv",
                    body=[ADAPTER_INTERFACE, "Powered", Variant("b", powered)],
                )
            )
            if reply.message_type == MessageType.ERROR:
                raise BleakDBusError(reply.error_name or "unknown", reply.body)
    finally:
        bus.disconnect()


def _passive_unsupported(exc: BaseException) -> bool:
    if isinstance(exc, BleakDBusError):
        return exc.dbus_error in _PASSIVE_UNSUPPORTED
    # bleak turns "no RegisterMonitor here" into a plain BleakError that names passive scanning.
    return isinstance(exc, BleakError) and "passive" in str(exc)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Scanner:
    """Runs one continuous BLE scan and keeps it alive."""

    def __init__(
        self,
        on_advertisement: OnAdvertisement,
        *,
        adapter: str = "hci0",
        watchdog_s: float = DEFAULT_WATCHDOG_S,
        scanner_factory: ScannerFactory = bleak_scanner_factory,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        power_cycle: PowerCycle = power_cycle_adapter,
        passive: bool = True,
        backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        jitter: float = DEFAULT_JITTER,
        power_cycle_after: int = DEFAULT_POWER_CYCLE_AFTER,
        operation_timeout_s: float = DEFAULT_OPERATION_TIMEOUT_S,
        rand: Callable[[], float] = random.random,
        give_up_after: int | None = None,
    ) -> None:
        if watchdog_s <= 0 or power_cycle_after < 1:
            raise ValueError("watchdog_s must be positive and power_cycle_after at least 1")
        self._on_advertisement = on_advertisement
        self._adapter = adapter
        self._watchdog_s = watchdog_s
        self._factory = scanner_factory
        self._clock = clock
        self._sleep = sleep
        self._power_cycle = power_cycle
        self._mode: ScanMode = "passive" if passive else "active"
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._jitter = jitter
        self._power_cycle_after = power_cycle_after
        self._operation_timeout_s = operation_timeout_s
        self._rand = rand
        self._give_up_after = give_up_after  # None: retry for ever, as the agent must
        self._adverts = 0
        self._last_advert_at = 0.0
        self._restarts = 0
        self._power_cycles = 0
        self._start_failures = 0
        self._watchdog_expiries = 0
        self._callback_errors = 0
        self._running = False
        self._stopped = False
        self._failures = 0
        self._last_error: str | None = None
        self._error_kind: FaultKind | None = None

    def stats(self) -> ScannerStats:
        """A snapshot of the scanner's counters and state."""
        return ScannerStats(
            adverts=self._adverts,
            restarts=self._restarts,
            power_cycles=self._power_cycles,
            mode=self._mode,
            running=self._running,
            last_error=self._last_error,
            start_failures=self._start_failures,
            watchdog_expiries=self._watchdog_expiries,
            callback_errors=self._callback_errors,
            state=self._state(),
            failures=self._failures,
            error_kind=self._error_kind,
        )

    def _state(self) -> ScanState:
        if self._running:
            return "scanning"
        if self._stopped:
            return "stopped"
        return "failing" if self._failures else "starting"

    async def run(self, stop: asyncio.Event) -> None:
        """Scan until `stop` is set, recovering from any BlueZ trouble on the way.

        Raises ScanFailed only when `give_up_after` was given and that many starts in a row failed.
        """
        self._stopped = False
        try:
            await self._run(stop)
        finally:
            self._stopped = True

    async def _run(self, stop: asyncio.Event) -> None:
        # Consecutive failures: starts that failed, and watchdog expiries with nothing heard since the start.
        self._failures = 0
        failed_starts = 0  # in a row: only these make the pause grow
        first = True
        while not stop.is_set():
            if self._failures:
                if self._failures % self._power_cycle_after == 0:
                    await self._power_cycle_adapter()
                # A scan that went silent is restarted after the shortest pause, however often: a longer
                # one is time in which a phone at the door is not heard (a quiet street at night is silent).
                await self._pause(stop, self._backoff(max(1, failed_starts)))
                if stop.is_set():
                    break
            if not first:
                self._restarts += 1
            first = False
            scanner = await self._start()
            if scanner is None:
                self._failures += 1
                failed_starts += 1
                if self._give_up_after is not None and self._failures >= self._give_up_after:
                    raise ScanFailed(self._error_kind or "other", self._last_error, self._failures)
                continue
            failed_starts = 0
            heard = await self._watch(stop)
            await self._stop(scanner)
            # A scan that worked for a while and then went silent starts the count afresh.
            self._failures = 1 if heard else self._failures + 1

    def _backoff(self, failures: int) -> float:
        exponent = min(failures - 1, _MAX_BACKOFF_EXPONENT)
        delay = min(self._backoff_max_s, self._backoff_initial_s * float(2**exponent))
        # Jitter keeps gateways that lost BlueZ together (an OS update) from retrying in lockstep.
        return delay * (1.0 + self._jitter * self._rand())

    async def _start(self) -> BleakScannerLike | None:
        scanner = self._factory(self._on_detection, self._mode, self._adapter)
        try:
            async with asyncio.timeout(self._operation_timeout_s):
                await scanner.start()
        # BlueZ and D-Bus fail in many shapes (BleakError, OSError, EOFError, TimeoutError); all mean retry.
        except Exception as exc:  # noqa: BLE001
            await self._stop(scanner)
            self._last_error = _describe(exc)
            self._error_kind = classify(exc)
            if self._mode == "passive" and _passive_unsupported(exc):
                logger.warning("no passive scanning on %s (%s), scanning actively", self._adapter, exc)
                self._mode = "active"
                return await self._start()
            self._start_failures += 1
            logger.warning("%s scan on %s failed to start: %s", self._mode, self._adapter, self._last_error)
            return None
        self._running = True
        logger.info("%s scan running on %s", self._mode, self._adapter)
        return scanner

    async def _stop(self, scanner: BleakScannerLike) -> None:
        self._running = False
        try:
            async with asyncio.timeout(self._operation_timeout_s):
                await scanner.stop()
        # Stopping a scan whose BlueZ is gone fails; the scan is over either way.
        except Exception as exc:  # noqa: BLE001
            logger.debug("stopping the scan on %s failed: %s", self._adapter, _describe(exc))

    async def _watch(self, stop: asyncio.Event) -> bool:
        """Wait for `stop` or for the watchdog; answer whether anything was heard since the start."""
        started_at = self._clock()
        adverts_at_start = self._adverts
        while not stop.is_set():
            quiet_since = started_at if self._adverts == adverts_at_start else self._last_advert_at
            remaining = quiet_since + self._watchdog_s - self._clock()
            if remaining <= 0:
                self._watchdog_expiries += 1
                self._last_error = f"no advertisement for {self._watchdog_s:g} s"
                self._error_kind = "silent"
                logger.warning("%s on %s, restarting the scan", self._last_error, self._adapter)
                break
            await self._pause(stop, remaining)
        return self._adverts != adverts_at_start

    async def _power_cycle_adapter(self) -> None:
        logger.warning("power-cycling %s after repeated scan failures", self._adapter)
        try:
            async with asyncio.timeout(self._operation_timeout_s):
                await self._power_cycle(self._adapter)
        except Exception as exc:  # noqa: BLE001 - a failed power-cycle is one more failure to back off from
            self._last_error = f"power-cycle failed: {_describe(exc)}"
            self._error_kind = classify(exc)
            logger.warning("%s", self._last_error)
        else:
            self._power_cycles += 1

    async def _pause(self, stop: asyncio.Event, delay: float) -> None:
        """Sleep for `delay` with the injected sleep, waking early when `stop` is set."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    def _on_detection(self, _device: BLEDevice, advertisement: AdvertisementData) -> None:
        # The device (and with it the MAC address) stops here: nothing downstream may see it.
        now = self._clock()
        self._adverts += 1
        self._last_advert_at = now
        try:
            self._on_advertisement(
                advertisement.manufacturer_data, advertisement.service_data, advertisement.rssi, now
            )
        except Exception:  # noqa: BLE001 - a consumer bug must not stop the scan; it is logged and counted
            self._callback_errors += 1
            logger.exception("the advertisement consumer failed")
