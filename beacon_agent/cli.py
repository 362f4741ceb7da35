"""`beacon-agent`: the gateway's command line (run, scan, doctor, calibrate, enroll)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer

if TYPE_CHECKING:
    from beacon_agent.scan_view import CannotScan

from beacon_agent.config import AgentSettings
from beacon_agent.enrol import EnrolmentError, enrol

app = typer.Typer(help="Nahbar BLE gateway agent.", no_args_is_help=True, add_completion=False)


@app.callback()
def _root() -> None:
    """Nahbar BLE gateway agent."""


@app.command("enroll")
def enroll_command(
    server: str = typer.Option(..., help="The Nahbar server, e.g. https://nahbar.example.org"),
    code: str = typer.Option(..., help="The one-time enrolment code an admin gave you"),
    state_dir: Path | None = typer.Option(None, help="Where the token is kept (default from settings)"),
) -> None:
    """Exchange a one-time code for this gateway's token; the token (0600) and the server's address are
    kept in the state directory, so `beacon-agent run` needs nothing else."""
    settings = AgentSettings() if state_dir is None else AgentSettings(state_dir=state_dir)
    server = server.strip().rstrip("/")
    try:
        with httpx.Client(base_url=server, timeout=15) as client:
            enrolled = enrol(client, code, settings.state_dir)
    except httpx.HTTPError as exc:
        typer.echo(f"enrolment failed: cannot reach {server} ({type(exc).__name__}: {exc})", err=True)
        raise typer.Exit(1) from exc
    except EnrolmentError as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"enrolled as gateway {enrolled.gateway_id} at site {enrolled.site_id}; token in "
        f"{settings.token_file}, server address {server} in {settings.server_url_file}"
    )
    now = AgentSettings(state_dir=settings.state_dir).server_url.rstrip("/")
    if now != server:
        # Only the environment can override the saved address; say so rather than report elsewhere.
        typer.echo(f"note: BEACON_AGENT_SERVER_URL={now} overrides the saved address; unset it", err=True)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@app.command("run")
def run_command(
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Scan, track and deliver presence events until stopped (what the systemd unit runs)."""
    from beacon_agent.agent import Agent, read_token
    from beacon_agent.sdnotify import notify

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = AgentSettings()
    token = read_token(settings.token_file)

    async def run_agent() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        async with httpx.AsyncClient(base_url=settings.server_url) as client:
            agent = Agent(settings, client, token, notify=notify)
            logging.getLogger("beacon_agent").info(
                "running on %s, delivering to %s", settings.adapter, settings.server_url
            )
            await agent.run(stop)

    asyncio.run(run_agent())


@app.command("scan")
def scan_command(
    seconds: float = typer.Option(0, help="Stop after this many seconds (0: until Ctrl-C)"),
    adapter: str | None = typer.Option(None, help="Bluetooth adapter (default from settings)"),
) -> None:
    """Show a live table of the beacon frames in the air, for installers (nothing is stored or sent)."""
    from beacon_agent.scan_view import CannotScan, run_scan

    settings = AgentSettings()
    try:
        asyncio.run(run_scan(adapter or settings.adapter, seconds, sys.stdout))
    except CannotScan as exc:
        _say_scan_failed("scan failed", exc)
        raise typer.Exit(1) from exc


@app.command("doctor")
def doctor_command() -> None:
    """Check BlueZ, the adapter, D-Bus permissions, the clock and the server, and say how to fix each."""
    from beacon_agent.doctor import render, run_checks

    checks = asyncio.run(run_checks(AgentSettings()))
    typer.echo(render(checks))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command("calibrate")
def calibrate_command(
    target: str = typer.Option(
        "strongest-eid",
        help="A watched beacon's identifier as `scan` shows it (e.g. ibeacon:<uuid>/<major>/<minor>), "
        "or strongest-eid to calibrate the phone held nearest",
    ),
    seconds: float = typer.Option(30, min=5, help="How long to measure"),
    adapter: str | None = typer.Option(None, help="Bluetooth adapter (default from settings)"),
) -> None:
    """Measure the RSSI at 1 m of a beacon (or phone) held still at 1 m from the gateway, in line of sight."""
    from beacon_agent.calibrate import CalibrationError, calibrate, gather
    from beacon_agent.scan_view import CannotScan, sightings

    settings = AgentSettings()

    async def measure() -> list[tuple[str, int]]:
        async with sightings(adapter or settings.adapter) as heard:
            typer.echo(f"measuring for {seconds:.0f} s; keep the beacon still at 1 m ...")
            return await gather(heard, seconds=seconds)

    try:
        result = calibrate(asyncio.run(measure()), target)
    except CannotScan as exc:
        _say_scan_failed("calibration failed: the scan cannot run", exc)
        raise typer.Exit(1) from exc
    except CalibrationError as exc:
        typer.echo(f"calibration failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{result.target}: power at 1 m = {result.power_1m} dBm "
        f"({result.samples} readings, spread {result.spread_db:.1f} dB)"
    )


def _say_scan_failed(what: str, exc: CannotScan) -> None:
    typer.echo(f"{what}: {exc.check.detail}", err=True)
    if exc.check.fix:
        typer.echo(f"fix: {exc.check.fix}", err=True)


def main() -> None:
    app()
