"""`nahbar`: run, migrate and administer the server."""

from __future__ import annotations

import getpass
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path

import typer
from pydantic import ValidationError

# Every command works on the whole schema: with only some models imported, a relationship or foreign key
# to a table whose model was not imported fails when the first session flushes (NoReferencedTableError).
import server.models  # noqa: F401
from server.core.config import get_settings, serving_refusal
from server.core.db import make_engine, make_sessionmaker, session_scope, utcnow
from server.core.migrate import upgrade

app = typer.Typer(help="Nahbar server commands.", no_args_is_help=True, add_completion=False)


@app.callback()
def settings_file(
    env_file: Path | None = typer.Option(
        None,
        "--env-file",
        help="Read NAHBAR_* settings from this file (KEY=value lines, as in /etc/nahbar/nahbar.env); a "
        "variable already set in the environment wins.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
) -> None:
    """Nahbar server commands."""
    if env_file is not None:
        load_settings_file(env_file)


def load_settings_file(path: Path) -> None:
    """Put the file's NAHBAR_* settings into this process's environment (and so its workers'), unless set."""
    from dotenv import dotenv_values

    for key, value in dotenv_values(path).items():
        if key.startswith("NAHBAR_") and value is not None:
            os.environ.setdefault(key, value)


@app.command()
def migrate() -> None:
    """Upgrade the database at NAHBAR_DATABASE_URL to the newest schema."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    typer.echo(f"database at head: {engine.url.render_as_string(hide_password=True)}")


def _refuse(*reasons: str) -> typer.Exit:
    """Say on stderr why the command does not run, and exit with 2 (a usage error)."""
    for reason in reasons:
        typer.echo(f"nahbar: {reason}", err=True)
    return typer.Exit(2)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(
        1, help="Worker processes (PostgreSQL for more than one machine; on SQLite, one machine)."
    ),
) -> None:
    """Serve the API (run `nahbar migrate` first)."""
    import uvicorn

    from server.core.logging import logging_config
    from server.core.serving import metrics_folder, uvicorn_options

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise _refuse(*(error["msg"].removeprefix("Value error, ") for error in exc.errors())) from None
    refusal = serving_refusal(settings, host)
    if refusal is not None:
        raise _refuse(refusal)
    options = uvicorn_options(logging_config(settings.log_level, settings.log_format))
    folder, made_here = metrics_folder(workers)
    try:
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
            **options,
        )
    finally:
        if made_here and folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    phones: int = typer.Option(12, min=1, max=500, help="Opted-in phones walking the street."),
    seconds: float = typer.Option(0, min=0, help="Stop after this long (0: run until Ctrl-C)."),
) -> None:
    """Migrate, seed two charity sites and serve, while simulated phones walk past and get prompts."""
    from server.demo.run import run_demo

    raise typer.Exit(run_demo(get_settings(), host=host, port=port, phones=phones, seconds=seconds))


@app.command()
def purge() -> None:
    """Roll raw sightings and decisions up into daily aggregates and delete those older than the retention
    period, once."""
    from server.retention.tasks import purge as run_purge

    settings = get_settings()
    engine = make_engine(settings.database_url)
    report = run_purge(make_sessionmaker(engine), settings.retention_days, utcnow())
    engine.dispose()
    typer.echo(
        f"aggregate rows written: {report.aggregated}; deleted: {report.events_deleted} proximity events, "
        f"{report.visits_deleted} visits, {report.decisions_deleted} decisions"
    )


@app.command()
def simulate(
    days: int = typer.Option(30, min=1, max=90, help="Replay the last this many days."),
    organisation: int | None = typer.Option(None, help="Report only this organisation's sites."),
    proposal: Path | None = typer.Option(None, help="JSON: policy, campaigns, organisation (as the API)."),
    until: datetime | None = typer.Option(None, help="End of the period, UTC (default: now)."),
) -> None:
    """Replay stored sightings with the current and proposed policy settings; sends and records nothing."""
    from server.policy.simulate_cli import run

    settings = get_settings()
    raise typer.Exit(run(settings, days=days, organisation=organisation, proposal_file=proposal, until=until))


@app.command("create-admin")
def create_admin(
    email: str | None = typer.Option(None, help="Login e-mail of the platform operator (asked if left out)."),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the password from the first line of standard input (for provisioning scripts; a "
        "password in the arguments would be visible to every user of the machine).",
    ),
) -> None:
    """Create the first platform operator account (asks for the e-mail and password unless given)."""
    from sqlalchemy import select

    from server.core.const import MIN_PASSWORD_LENGTH
    from server.core.security import hash_password
    from server.tenancy.models import AdminUser

    if password_stdin:
        if email is None:
            raise typer.BadParameter("needed when the password comes from stdin", param_hint="--email")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise typer.BadParameter("standard input held no password line", param_hint="--password-stdin")
    else:
        if email is None:
            email = str(typer.prompt("Email"))
        password = getpass.getpass(f"Password ({MIN_PASSWORD_LENGTH}+ characters): ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise typer.BadParameter(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if not password_stdin and password != getpass.getpass("Repeat: "):
        raise typer.BadParameter("the passwords differ")
    email = email.strip().lower()
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        for session in session_scope(make_sessionmaker(engine)):
            if session.scalar(select(AdminUser).where(AdminUser.email == email)) is not None:
                raise typer.BadParameter(f"{email} exists already")
            session.add(AdminUser(email=email, password_hash=hash_password(password), is_operator=True))
    finally:
        engine.dispose()
    server = settings.public_url.rstrip("/")
    typer.echo(f"operator {email} created")
    typer.echo(
        f"next: log in with POST {server}/admin/api/v1/auth/login (try it at {server}/docs), "
        "then create an organisation and invite its first owner"
    )


@app.command("gateway-code")
def gateway_code(
    site_id: int = typer.Option(..., help="The site the gateway stands at."),
    name: str = typer.Option("window gateway", help="A name staff recognise."),
) -> None:
    """Create a gateway at a site and print its one-time enrolment code and command."""
    from server.sites.models import Site
    from server.sites.service import issue_enrolment_code

    settings = get_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    for session in session_scope(sessions):
        site = session.get(Site, site_id)
        if site is None:
            raise typer.BadParameter(f"no site with id {site_id}")
        issued = issue_enrolment_code(session, site, name, utcnow())
        until = f"{issued.expires_at:%Y-%m-%d %H:%M} UTC"
        typer.echo(f"gateway {issued.gateway.id} at {site.name}; code valid until {until}")
        typer.echo(f"on the Pi: beacon-agent enroll --server {settings.public_url} --code {issued.code}")


def main() -> None:
    app()
