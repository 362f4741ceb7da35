"""The scanner's watchdog, backoff and escalation, through `Scanner.run` with bleak's edge faked.

The fake BleakScanner stands where bleak does (house style 9); time is a hand-moved clock and an injected
sleep that moves it, so nothing here waits for real time and nothing asserts on durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from beacon_agent.scanner import DetectionCallback, ScanMode, Scanner

ADDRESS = "C0:FF:EE:12:34:56"
EID_SERVICE_DATA = {"0000feaa-0000-1000-8000-00805f9b34fb": bytes.fromhex("30f6") + bytes(range(8))}
IN_PROGRESS = BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"])
NO_MONITOR = BleakError(
    "passive scanning on Linux requires BlueZ >= 5.56 with --experimental enabled and Linux kernel >= 5.10"
)


def advertisement(rssi: int = -60) -> tuple[BLEDevice, AdvertisementData]:
    data = AdvertisementData(
        local_name="Pixel",
        manufacturer_data={0x00E0: b"\x01\x02"},
        service_data=EID_SERVICE_DATA,
        service_uuids=[],
        tx_power=None,
        rssi=rssi,
        platform_data=(f"/org/bluez/hci0/dev_{ADDRESS.replace(':', '_')}", {"Address": ADDRESS}),
    )
    return BLEDevice(ADDRESS, "Pixel", {"path": "/org/bluez/hci0/dev_x"}), data


class World:
    """The clock, the sleep that moves it, and a log of what the scanner did in order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.log: list[str] = []
        self.sleeps: list[float] = []
        self.stop = asyncio.Event()
        self.started = asyncio.Event()
        # Called at each sleep with (sleep number, delay) before the clock moves; scenario steps go here.
        self.on_sleep: Callable[[int, float], None] = lambda _n, _d: None

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.log.append("sleep")
        self.on_sleep(len(self.sleeps), delay)
        self.now += delay
        await asyncio.sleep(0)

    async def power_cycle(self, adapter: str) -> None:
        self.log.append(f"power_cycle {adapter}")


class FakeBleakScanner:
    def __init__(self, world: World, callback: DetectionCallback, outcome: BaseException | None) -> None:
        self.world = world
        self.callback = callback
        self.outcome = outcome
        self.stopped = False

    async def start(self) -> None:
        self.world.log.append("start")
        self.world.started.set()
        if self.outcome is not None:
            raise self.outcome

    async def stop(self) -> None:
        self.world.log.append("stop")
        self.stopped = True


class Factory:
    """Builds fake scanners whose start() fails or succeeds as scripted; `default` once the script ends."""

    def __init__(self, world: World, *outcomes: BaseException | None, default: BaseException | None = None):
        self.world = world
        self.outcomes = list(outcomes)
        self.default = default
        self.built: list[tuple[ScanMode, str, FakeBleakScanner]] = []

    def __call__(self, callback: DetectionCallback, mode: ScanMode, adapter: str) -> FakeBleakScanner:
        outcome = self.outcomes.pop(0) if self.outcomes else self.default
        scanner = FakeBleakScanner(self.world, callback, outcome)
        self.built.append((mode, adapter, scanner))
        return scanner

    @property
    def modes(self) -> list[ScanMode]:
        return [mode for mode, _, _ in self.built]

    def feed(self, rssi: int = -60) -> None:
        self.built[-1][2].callback(*advertisement(rssi))


Seen = list[tuple[Mapping[int, bytes], Mapping[str, bytes], int, float]]


def make_scanner(world: World, factory: Factory, seen: Seen | None = None, **kwargs: object) -> Scanner:
    def on_advertisement(mfr: Mapping[int, bytes], svc: Mapping[str, bytes], rssi: int, now: float) -> None:
        if seen is not None:
            seen.append((mfr, svc, rssi, now))

    options: dict[str, object] = {
        "watchdog_s": 90.0,
        "clock": world.clock,
        "sleep": world.sleep,
        "power_cycle": world.power_cycle,
        "rand": lambda: 0.5,
        "jitter": 0.2,
    }
    options.update(kwargs)
    return Scanner(on_advertisement, scanner_factory=factory, **options)  # type: ignore[arg-type]


async def test_advertisement_reaches_the_consumer_without_the_device() -> None:
    world = World()
    factory = Factory(world, None)
    seen: Seen = []
    scanner = make_scanner(world, factory, seen, adapter="hci1")

    def step(_n: int, _delay: float) -> None:
        factory.feed(rssi=-71)
        world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    assert seen == [({0x00E0: b"\x01\x02"}, EID_SERVICE_DATA, -71, 1000.0)]
    assert ADDRESS not in repr(seen)
    assert ADDRESS.replace(":", "_") not in repr(seen)
    assert factory.modes == ["passive"]
    assert factory.built[0][1] == "hci1"
    assert factory.built[0][2].stopped
    stats = scanner.stats()
    assert (stats.adverts, stats.restarts, stats.running, stats.last_error) == (1, 0, False, None)


async def test_running_is_reported_while_the_scan_is_up() -> None:
    world = World()
    factory = Factory(world, None)
    scanner = make_scanner(world, factory)
    observed: list[bool] = []

    def step(_n: int, _delay: float) -> None:
        observed.append(scanner.stats().running)
        world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)
    assert observed == [True]
    assert scanner.stats().running is False


async def test_falls_back_to_active_at_once_when_bluez_has_no_advertisement_monitor() -> None:
    world = World()
    factory = Factory(world, NO_MONITOR, None)
    scanner = make_scanner(world, factory)
    world.on_sleep = lambda _n, _d: world.stop.set()

    await scanner.run(world.stop)

    assert factory.modes == ["passive", "active"]
    # No backoff between the two: the only sleep is the running scan's watchdog wait.
    assert world.log == ["start", "stop", "start", "sleep", "stop"]
    assert world.sleeps == [90.0]
    stats = scanner.stats()
    assert stats.mode == "active"
    assert stats.start_failures == 0
    assert "passive" in (stats.last_error or "")


async def test_passive_stays_when_the_failure_is_transient() -> None:
    world = World()
    factory = Factory(world, IN_PROGRESS, None)
    scanner = make_scanner(world, factory)
    world.on_sleep = lambda n, _d: world.stop.set() if n == 2 else None

    await scanner.run(world.stop)

    assert factory.modes == ["passive", "passive"]
    assert scanner.stats().mode == "passive"


async def test_in_progress_is_retried_with_exponential_backoff_and_jitter() -> None:
    world = World()
    factory = Factory(world, IN_PROGRESS, IN_PROGRESS, IN_PROGRESS, None)
    seen: Seen = []
    scanner = make_scanner(world, factory, seen, power_cycle_after=10)

    def step(n: int, _delay: float) -> None:
        if n == 4:  # the watchdog wait of the scan that finally started
            factory.feed()
            world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    # 1, 2, 4 seconds, each stretched by jitter 0.2 x rand 0.5.
    assert world.sleeps[:3] == pytest.approx([1.1, 2.2, 4.4])
    assert len(seen) == 1
    stats = scanner.stats()
    assert (stats.start_failures, stats.restarts, stats.power_cycles) == (3, 3, 0)
    assert "org.bluez.Error.InProgress" in (stats.last_error or "")


async def test_backoff_is_capped() -> None:
    world = World()
    factory = Factory(world, default=IN_PROGRESS)
    scanner = make_scanner(world, factory, backoff_max_s=5.0, power_cycle_after=100)
    world.on_sleep = lambda n, _d: world.stop.set() if n == 8 else None

    await scanner.run(world.stop)

    assert world.sleeps == pytest.approx([1.1, 2.2, 4.4, 5.5, 5.5, 5.5, 5.5, 5.5])


async def test_watchdog_restarts_a_silent_scan() -> None:
    world = World()
    factory = Factory(world, None, None)
    seen: Seen = []
    scanner = make_scanner(world, factory, seen)

    def step(n: int, _delay: float) -> None:
        if n == 3:  # the second scan's watchdog wait: it works
            factory.feed()
            world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    # Wait the full watchdog, stop the silent scan, back off once, start a fresh scan.
    assert world.log == ["start", "sleep", "stop", "sleep", "start", "sleep", "stop"]
    assert world.sleeps[0] == 90.0
    assert factory.built[0][2].stopped
    assert len(seen) == 1
    stats = scanner.stats()
    assert (stats.watchdog_expiries, stats.restarts) == (1, 1)
    assert stats.last_error == "no advertisement for 90 s"


async def test_advertisements_keep_the_watchdog_quiet() -> None:
    world = World()
    factory = Factory(world, None)
    scanner = make_scanner(world, factory)

    def step(n: int, delay: float) -> None:
        # An advertisement two thirds into every wait; the scanner must keep waiting, never restart.
        world.now += delay * 2 / 3
        factory.feed()
        world.now -= delay * 2 / 3
        if n == 20:
            world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    assert len(factory.built) == 1
    stats = scanner.stats()
    assert (stats.watchdog_expiries, stats.restarts, stats.adverts) == (0, 0, 20)


async def test_a_scan_that_worked_then_went_silent_restarts_without_long_backoff() -> None:
    world = World()
    factory = Factory(world, IN_PROGRESS, IN_PROGRESS, None, None)
    scanner = make_scanner(world, factory, power_cycle_after=10)

    def step(n: int, _delay: float) -> None:
        if n == 3:  # 30 s into the first running scan one advertisement, then the air goes quiet
            world.now += 30
            factory.feed()
            world.now -= 30
        if n == 6:
            world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    # Backoff 1.1, 2.2; the watch: 90, then 30 more (90 after the advert); backoff 1.1 afresh, not 4.4.
    assert world.sleeps[:5] == pytest.approx([1.1, 2.2, 90.0, 30.0, 1.1])


async def test_repeated_start_failures_escalate_to_power_cycles() -> None:
    world = World()
    factory = Factory(world, default=IN_PROGRESS)
    scanner = make_scanner(world, factory, power_cycle_after=3, adapter="hci2")
    world.on_sleep = lambda n, _d: world.stop.set() if n == 6 else None

    await scanner.run(world.stop)

    assert [e for e in world.log if e != "stop"] == [
        "start", "sleep", "start", "sleep", "start",
        "power_cycle hci2", "sleep", "start", "sleep", "start", "sleep", "start",
        "power_cycle hci2", "sleep",
    ]  # fmt: skip
    assert scanner.stats().power_cycles == 2


async def test_a_silent_street_is_scanned_again_after_the_shortest_pause_every_time() -> None:
    world = World()
    factory = Factory(world, default=None)
    scanner = make_scanner(world, factory, power_cycle_after=100)
    world.on_sleep = lambda n, _d: world.stop.set() if n == 8 else None

    await scanner.run(world.stop)

    # Nothing heard for the watchdog's time, restarted after 1.1 s, and again, never waiting longer: a phone
    # that comes to the door in a pause would not be heard.
    assert world.sleeps == pytest.approx([90.0, 1.1, 90.0, 1.1, 90.0, 1.1, 90.0, 1.1])


async def test_silent_scans_escalate_to_a_power_cycle_too() -> None:
    world = World()
    factory = Factory(world, default=None)
    scanner = make_scanner(world, factory, power_cycle_after=2)
    world.on_sleep = lambda n, _d: world.stop.set() if n == 4 else None

    await scanner.run(world.stop)

    # watch (expires), backoff, watch (expires again), power-cycle with the scan stopped, backoff.
    assert world.log == [
        "start", "sleep", "stop", "sleep", "start", "sleep", "stop", "power_cycle hci0", "sleep",
    ]  # fmt: skip
    assert scanner.stats().watchdog_expiries == 2


async def test_a_failing_power_cycle_is_survived() -> None:
    world = World()
    factory = Factory(world, IN_PROGRESS, None)
    attempts: list[str] = []

    async def broken_power_cycle(adapter: str) -> None:
        attempts.append(adapter)
        raise BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["org.bluez is gone"])

    scanner = make_scanner(world, factory, power_cycle=broken_power_cycle, power_cycle_after=1)

    def step(n: int, _delay: float) -> None:
        if n == 2:
            factory.feed()
            world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    assert attempts == ["hci0"]
    stats = scanner.stats()
    assert stats.adverts == 1
    assert stats.power_cycles == 0
    assert "power-cycle failed" in (stats.last_error or "")


async def test_a_start_that_hangs_is_abandoned_and_retried() -> None:
    world = World()
    never = asyncio.Event()

    class Hanging(FakeBleakScanner):
        async def start(self) -> None:
            self.world.log.append("start")
            await never.wait()

    built: list[Hanging] = []

    def factory(callback: DetectionCallback, _mode: ScanMode, _adapter: str) -> Hanging:
        built.append(Hanging(world, callback, None))
        return built[-1]

    scanner = Scanner(
        lambda *_: None,
        scanner_factory=factory,
        clock=world.clock,
        sleep=world.sleep,
        power_cycle=world.power_cycle,
        operation_timeout_s=0.01,
    )
    world.on_sleep = lambda n, _d: world.stop.set() if n == 2 else None

    await scanner.run(world.stop)

    assert len(built) == 2
    assert all(s.stopped for s in built)
    stats = scanner.stats()
    assert stats.start_failures == 2
    assert stats.last_error == "TimeoutError"


async def test_errors_in_the_consumer_are_counted_and_scanning_goes_on() -> None:
    world = World()
    factory = Factory(world, None)
    calls: list[int] = []

    def on_advertisement(
        _mfr: Mapping[int, bytes], _svc: Mapping[str, bytes], rssi: int, _now: float
    ) -> None:
        calls.append(rssi)
        if rssi == -50:
            raise ValueError("tracker bug")

    scanner = Scanner(
        on_advertisement,
        scanner_factory=factory,
        clock=world.clock,
        sleep=world.sleep,
        power_cycle=world.power_cycle,
    )

    def step(_n: int, _delay: float) -> None:
        factory.feed(-50)
        factory.feed(-60)
        world.stop.set()

    world.on_sleep = step
    await scanner.run(world.stop)

    assert calls == [-50, -60]
    stats = scanner.stats()
    assert (stats.adverts, stats.callback_errors) == (2, 1)


@pytest.mark.timeout(10)
async def test_stop_ends_run_during_a_long_real_backoff() -> None:
    world = World()
    factory = Factory(world, default=IN_PROGRESS)
    # The real asyncio.sleep with an hour of backoff: only `stop` can end this run.
    scanner = Scanner(lambda *_: None, scanner_factory=factory, sleep=asyncio.sleep, backoff_initial_s=3600.0)
    task = asyncio.create_task(scanner.run(world.stop))
    await world.started.wait()
    world.stop.set()
    await task
    assert len(factory.built) == 1
    assert scanner.stats().start_failures == 1


def test_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="watchdog_s"):
        Scanner(lambda *_: None, watchdog_s=0)
    with pytest.raises(ValueError, match="power_cycle_after"):
        Scanner(lambda *_: None, power_cycle_after=0)
