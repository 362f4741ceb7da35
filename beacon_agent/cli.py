"""`beacon-agent`: the gateway's command line."""

from __future__ import annotations

from pathlib import Path

import httpx
import typer

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
    """Exchange a one-time code for this gateway's token (stored with 0600 permissions)."""
    settings = AgentSettings() if state_dir is None else AgentSettings(state_dir=state_dir)
    try:
        with httpx.Client(base_url=server, timeout=15) as client:
            enrolled = enrol(client, code, settings.token_file)
    except (httpx.HTTPError, EnrolmentError) as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    where = f"gateway {enrolled.gateway_id} at site {enrolled.site_id}"
    typer.echo(f"enrolled as {where}; token in {settings.token_file}")


def main() -> None:
    app()
