"""The running gateway: advertisements -> decode -> tracker -> outbox -> uplink, plus config and heartbeat.

Every stage is the production one; only the advertisement source changes between a Pi (the bleak
`Scanner`) and the demo's simulated street (`AdvertisementSource` fed by simulated phones).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final, Protocol

import httpx

from beacon_agent.config import AgentSettings
from beacon_agent.control import Control, ControlError, GatewayConfig, Heartbeat
from beacon_agent.models import PresenceEvent
from beacon_agent.outbox import Outbox
from beacon_agent.tracker import Tracker, TrackerConfig
from beacon_agent.uplink import Uplink, full_jitter

log = logging.getLogger(__name__)

TICK_S: Final = 1.0  # how often presences are aged and new events committed to the outbox (one transaction)
# A changed config (a campaign's minimum dwell: the marks) reaches the gateway within this; unchanged, the
# answer is a 304 without a body.
CONFIG_POLL_S: Final = 60.0
DEFAULT_HEARTBEAT_S: Final = 60.0


class AdvertisementSource(Protocol):
    """What feeds the agent: the bleak scanner on a Pi, simulated phones in the demo."""

    async def run(self, stop: asyncio.Event) -> None: ...


class Notifier(Protocol):
    def __call__(self, state: str) -> object: ...


def agent_version() -> str:
    """The installed nahbar version, for the heartbeat."""
    try:
        return metadata.version("nahbar")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_token(path: Path) -> str:
    """The gateway token written by `beacon-agent enroll`; a clear error when the gateway is not enrolled."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise SystemExit(
            f"no gateway token at {path}: enrol first with 'beacon-agent enroll --server URL --code CODE'"
        ) from None
    if not token:
        raise SystemExit(f"the token file {path} is empty: enrol again with a new code")
    return token


@dataclass(slots=True)
class _Rates:
    """Tracker counters at the previous heartbeat, to report per-second rates."""

    at: float
    seen: int = 0
    kept: int = 0
    dropped: int = 0


class Agent:
    """Owns the pipeline's stages and the loops that move data between them."""

    def __init__(
        self,
        settings: AgentSettings,
        client: httpx.AsyncClient,
        token: str,
        *,
        source: Callable[[Agent], AdvertisementSource] | None = None,
        tracker_config: TrackerConfig | None = None,
        wall_clock: Callable[[], float] = time.time,
        notify: Notifier = lambda _state: None,
        tick_s: float = TICK_S,
        backoff_jitter: Callable[[float], float] = full_jitter,
    ) -> None:
        self.settings = settings
        self.tracker = Tracker(tracker_config or TrackerConfig())
        self.outbox = Outbox(settings.state_dir / "outbox.db", settings.outbox_max_events)
        self.uplink = Uplink(client, self.outbox, token, jitter=backoff_jitter)
        self.control = Control(client, token)
        self._token = token
        self.wall_clock = wall_clock
        self._notify = notify
        self._tick_s = tick_s
        self._heartbeat_s = DEFAULT_HEARTBEAT_S
        self._started = time.monotonic()
        self._rates = _Rates(at=time.monotonic())
        self._urgent: asyncio.Task[None] | None = None  # committing an urgent event now
        self.source = source(self) if source is not None else self._bleak_scanner()

    def _bleak_scanner(self) -> AdvertisementSource:
        # Imported here so the server's demo, which brings its own source, does not need bleak.
        from beacon_agent.scanner import Scanner

        return Scanner(
            self.on_advertisement,
            adapter=self.settings.adapter,
            watchdog_s=self.settings.watchdog_seconds,
        )

    def on_advertisement(
        self,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
        rssi: int,
        _now: float,
    ) -> None:
        """The scanner's callback: decode and track; nothing else of the advertisement is kept."""
        # The tracker stamps events with its time, so it gets the wall clock, not the scanner's monotonic one.
        self.tracker.advert(manufacturer_data, service_data, float(rssi), self.wall_clock())
        if self.tracker.urgent and self._urgent is None:
            # An enter or a dwell mark: the server decides on it, so it leaves now, not at the next tick.
            self._urgent = asyncio.get_running_loop().create_task(self._flush_urgent())

    async def _flush_urgent(self) -> None:
        try:
            await self.commit_events()
        finally:
            self._urgent = None

    def apply(self, config: GatewayConfig) -> None:
        """Apply a config the server sent, without restarting anything."""
        self.tracker.config = config.tracker
        self.tracker.watched = config.watched
        self._heartbeat_s = config.heartbeat_s
        log.info("applied gateway config %s (%d watched beacons)", config.etag, len(config.watched))

    async def flush_tracker(self) -> int:
        """Age presences and move new events to the outbox in one transaction; returns how many."""
        # The tracker is touched only on the event loop, where the scanner's callback also runs; only the
        # outbox commit (an fsync on an SD card) goes to a thread.
        self.tracker.tick(self.wall_clock())
        return await self.commit_events()

    async def commit_events(self) -> int:
        """Move the tracker's events to the outbox in one transaction and wake the uplink; how many."""
        events = self.tracker.drain()
        if events:
            await asyncio.to_thread(self.outbox.put, events)
            self.uplink.wake()
        return len(events)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until `stop` is set; then commit what the tracker still holds and close."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.source.run(stop))
                group.create_task(self.uplink.run(stop))
                group.create_task(self._tick_loop(stop))
                group.create_task(self._control_loop(stop))
                self._notify("READY=1")
        finally:
            self._notify("STOPPING=1")
            # Presences still open are not ended (no invented exit); what was emitted is committed.
            await asyncio.to_thread(self._final_flush, self.tracker.drain())

    def _final_flush(self, events: list[PresenceEvent]) -> None:
        if events:
            self.outbox.put(events)
        self.outbox.close()

    async def _tick_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.flush_tracker()
            self._notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._tick_s)

    async def _control_loop(self, stop: asyncio.Event) -> None:
        next_config = next_heartbeat = 0.0
        while not stop.is_set():
            now = time.monotonic()
            self._pick_up_new_token()
            if now >= next_config:
                next_config = now + CONFIG_POLL_S
                await self._fetch_config()
            if now >= next_heartbeat:
                next_heartbeat = now + self._heartbeat_s
                await self._send_heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.1, min(next_config, next_heartbeat) - now))

    def _pick_up_new_token(self) -> None:
        """After `beacon-agent enroll` ran again, use the new token without a restart."""
        with contextlib.suppress(OSError):
            token = self.settings.token_file.read_text().strip()
            if token and token != self._token:
                log.info("new gateway token found; resuming delivery")
                self._token = token
                self.uplink.set_token(token)
                self.control.set_token(token)

    async def _fetch_config(self) -> None:
        try:
            config = await self.control.fetch_config()
        except ControlError as exc:
            log.warning("could not fetch the gateway config (%s); keeping the current one", exc)
            return
        if config is not None:
            self.apply(config)

    async def _send_heartbeat(self) -> None:
        try:
            await self.control.send_heartbeat(self.heartbeat())
        except ControlError as exc:
            log.warning("heartbeat not delivered (%s)", exc)

    def heartbeat(self) -> Heartbeat:
        """What the fleet view shows: rates since the last heartbeat, queue depth, scanner health."""
        now = time.monotonic()
        stats, previous = self.tracker.stats, self._rates
        elapsed = max(now - previous.at, 1e-3)
        self._rates = _Rates(now, stats.seen, stats.kept, stats.dropped)
        outbox = self.outbox.stats()
        scanner = getattr(self.source, "stats", None)
        scanner_stats = scanner() if callable(scanner) else None
        wall = self.wall_clock()
        return Heartbeat(
            adverts_seen_per_s=round((stats.seen - previous.seen) / elapsed, 2),
            adverts_kept_per_s=round((stats.kept - previous.kept) / elapsed, 2),
            adverts_dropped_per_s=round((stats.dropped - previous.dropped) / elapsed, 2),
            outbox_depth=outbox.depth,
            outbox_dropped_full=outbox.dropped_full,
            outbox_set_aside=outbox.set_aside,
            scanner_restarts=getattr(scanner_stats, "restarts", 0),
            scanner_power_cycles=getattr(scanner_stats, "power_cycles", 0),
            scanner_mode=getattr(scanner_stats, "mode", "simulated"),
            scanner_state=getattr(scanner_stats, "state", None),
            scanner_failures=getattr(scanner_stats, "failures", 0),
            scanner_error=getattr(scanner_stats, "error_kind", None),
            uptime_s=round(now - self._started, 1),
            version=agent_version(),
            beacons=[
                (key, health.rssi, round(max(0.0, wall - health.last_seen), 1))
                for key, health in self.tracker.beacons.items()
            ],
        )
