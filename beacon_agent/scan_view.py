"""`beacon-agent scan`: a live table of decoded beacon frames, so an installer can see what the Pi hears."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

from beacon_agent.bluez_check import Check, scan_failed, scan_preflight
from beacon_agent.frames import (
    EddystoneEID,
    EddystoneTLM,
    EddystoneURL,
    Frame,
    decode,
    identifier,
)

if TYPE_CHECKING:
    from beacon_agent.scanner import ScannerStats

REFRESH_S: Final = 1.0
MAX_ROWS: Final = 40
FORGET_AFTER_S: Final = 30.0
# An installer waits for an answer: after this many failed starts in a row (about 4 s), say why and stop.
GIVE_UP_AFTER: Final = 3


class CannotScan(Exception):
    """The scan cannot run; `check` says why and how to fix it."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


@dataclass(slots=True)
class Row:
    kind: str
    detail: str
    rssi: int
    count: int
    last_seen: float


def describe(frame: Frame) -> tuple[str, str]:
    """A frame's kind and a short text that tells one beacon from another (never a MAC address)."""
    if isinstance(frame, EddystoneEID):
        return "eddystone_eid", frame.eid.hex()
    if isinstance(frame, EddystoneURL):
        return "eddystone_url", frame.url
    if isinstance(frame, EddystoneTLM):
        volts = "?" if frame.voltage_mv is None else f"{frame.voltage_mv} mV"
        temperature = "?" if frame.temperature_c is None else f"{frame.temperature_c:.1f} °C"
        return "eddystone_tlm", f"battery {volts}, {temperature}, up {frame.uptime_s:.0f} s"
    key = identifier(frame) or type(frame).__name__
    kind, _, rest = key.partition(":")
    return kind, rest


class ScanTable:
    """Keeps the newest reading per frame; foreign advertisements are only counted."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.foreign = 0

    def observe(
        self, manufacturer_data: Mapping[int, bytes], service_data: Mapping[str, bytes], rssi: int, now: float
    ) -> None:
        frame = decode(manufacturer_data, service_data)
        if frame is None:
            self.foreign += 1
            return
        kind, detail = describe(frame)
        row = self.rows.get((kind, detail))
        if row is None:
            self.rows[(kind, detail)] = Row(kind, detail, rssi, 1, now)
        else:
            row.rssi, row.count, row.last_seen = rssi, row.count + 1, now

    def render(self, now: float) -> str:
        """The table, strongest first; rows not heard for a while are dropped."""
        for key in [key for key, row in self.rows.items() if now - row.last_seen > FORGET_AFTER_S]:
            del self.rows[key]
        rows = sorted(self.rows.values(), key=lambda row: row.rssi, reverse=True)[:MAX_ROWS]
        lines = [f"{'kind':<14} {'rssi':>5} {'seen':>6} {'ago':>5}  identifier", "-" * 78]
        lines += [
            f"{row.kind:<14} {row.rssi:>5} {row.count:>6} {now - row.last_seen:>4.0f}s  {row.detail}"
            for row in rows
        ]
        lines.append(f"({len(self.rows)} beacon frames; {self.foreign} other advertisements ignored)")
        return "\n".join(lines)


async def preflight(adapter: str) -> None:
    """Raise CannotScan when BlueZ, the user's rights or the adapter rule a scan out before it starts."""
    problem = await scan_preflight(adapter)
    if problem is not None:
        raise CannotScan(problem)


async def _scan_outcome(scanning: asyncio.Task[None], adapter: str) -> None:
    """Raise CannotScan, with the cause BlueZ now shows, if the finished scan task gave up."""
    from beacon_agent.scanner import ScanFailed

    try:
        scanning.result()
    except ScanFailed as failed:
        # The probe names a cause (bluetoothd gone, adapter unplugged) better than the scan's last error.
        await preflight(adapter)
        raise CannotScan(scan_failed(adapter, failed.kind, failed.last_error, failed.attempts)) from failed


def status_line(stats: ScannerStats) -> str:
    """The scanner's state under the table: never '0 adverts' for a scan that is not running."""
    if stats.state == "failing":
        return (
            f"scanner: not scanning ({stats.failures} failures in a row), retrying; "
            f"last error: {stats.last_error}"
        )
    if stats.state in ("starting", "stopped"):
        return f"scanner: {stats.state}"
    return f"scanner: {stats.mode}, {stats.adverts} adverts"


@contextlib.asynccontextmanager
async def sightings(adapter: str) -> AsyncIterator[AsyncIterator[tuple[Frame, int]]]:
    """Scan while the context is open, yielding (frame, rssi) of every beacon frame heard.

    Raises CannotScan on entry when the adapter cannot scan, or from the iterator when the scan gave up.
    """
    from beacon_agent.scanner import ScanFailed, Scanner

    await preflight(adapter)
    queue: asyncio.Queue[tuple[Frame, int]] = asyncio.Queue(maxsize=10_000)

    def heard(
        manufacturer_data: Mapping[int, bytes], service_data: Mapping[str, bytes], rssi: int, _now: float
    ) -> None:
        frame = decode(manufacturer_data, service_data)
        if frame is not None and not queue.full():
            queue.put_nowait((frame, rssi))

    async def frames() -> AsyncIterator[tuple[Frame, int]]:
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({getter, scanning}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()
                continue
            await _scan_outcome(scanning, adapter)
            return

    stop = asyncio.Event()
    scanner = Scanner(heard, adapter=adapter, give_up_after=GIVE_UP_AFTER)
    scanning = asyncio.create_task(scanner.run(stop))
    try:
        yield frames()
    finally:
        stop.set()
        with contextlib.suppress(ScanFailed):  # already told through the iterator, or nobody asked
            await scanning


async def run_scan(adapter: str, seconds: float, out: TextIO) -> None:
    """Scan and redraw the table every second until Ctrl-C or `seconds` have passed.

    Raises CannotScan when the scan cannot start, saying why.
    """
    from beacon_agent.scanner import Scanner

    await preflight(adapter)
    table = ScanTable()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    scanner = Scanner(table.observe, adapter=adapter, give_up_after=GIVE_UP_AFTER)
    scanning = asyncio.create_task(scanner.run(stop))
    stopping = asyncio.create_task(stop.wait())
    clear = "\x1b[2J\x1b[H" if out.isatty() else ""
    try:
        while not stop.is_set() and not scanning.done():
            await asyncio.wait({stopping, scanning}, timeout=REFRESH_S)
            if scanning.done() and not stop.is_set():
                break  # gave up: the table of nothing is not worth drawing again
            out.write(f"{clear}{table.render(time.monotonic())}\n{status_line(scanner.stats())}\n")
            out.flush()
        stop.set()
        await asyncio.wait({scanning})
    finally:
        stopping.cancel()
    await _scan_outcome(scanning, adapter)
