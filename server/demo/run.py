"""`nahbar demo`: migrate, seed, serve, and run the simulated street until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Generator
from typing import Any

import typer
import uvicorn

from server.app import create_app
from server.core.config import Settings
from server.core.db import make_engine, make_sessionmaker, session_scope, utcnow
from server.core.migrate import upgrade
from server.core.serving import uvicorn_options
from server.demo.secret import DemoSecretRefused, with_demo_secret
from server.demo.seed import demo_admin, seed
from server.demo.street import run_street


class _DemoServer(uvicorn.Server):
    """uvicorn re-raises the captured Ctrl-C after shutdown; the demo wants a quiet, clean exit instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _DecisionPrinter(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = record.__dict__
        typer.echo(f"server decided {record.getMessage().split()[-1]:<20} at {fields.get('site')}")


def run_demo(settings: Settings, *, host: str, port: int, phones: int, seconds: float) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    decisions = logging.getLogger("nahbar.decisions")
    decisions.addHandler(_DecisionPrinter())
    decisions.setLevel(logging.INFO)
    decisions.propagate = False

    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    try:
        settings, kept_in = with_demo_secret(settings, sessions)
    except DemoSecretRefused as exc:
        engine.dispose()
        typer.echo(f"nahbar demo: {exc}", err=True)
        return 1
    password = secrets.token_urlsafe(12)  # new at every start, printed once below
    for session in session_scope(sessions):
        sites = seed(session, utcnow())
        admin = demo_admin(session, password)
    engine.dispose()
    typer.echo(f"database {settings.database_url} migrated and seeded: {', '.join(s.name for s in sites)}")
    if kept_in is not None:
        typer.echo(f"the demo's own secret key is in {kept_in} (readable by you alone)")

    # Every simulated phone opts in from this machine's one address; let the demo's own street through.
    limit = max(settings.optin_per_hour_per_client, phones)
    update: dict[str, Any] = {"optin_per_hour_per_client": limit}
    if "allow_private_push_hosts" not in settings.model_fields_set:
        update["allow_private_push_hosts"] = True  # a push service tried with the demo runs on this machine
    if "public_url" not in settings.model_fields_set:
        update["public_url"] = f"http://{host}:{port}"  # what the pages print in enrolment commands
    settings = settings.model_copy(update=update)
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", **uvicorn_options()
    )
    server = _DemoServer(config)
    login = (admin, password)
    asyncio.run(_serve_with_street(server, f"http://{host}:{port}", sites, phones, seconds, login))
    typer.echo("demo stopped")
    return 0


async def _serve_with_street(
    server: _DemoServer, base_url: str, sites: Any, phones: int, seconds: float, login: tuple[str, str]
) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # re-raise why it could not start (port in use, ...)
            return
        await asyncio.sleep(0.05)
    typer.echo(f"serving on {base_url}  (OpenAPI: {base_url}/docs; Ctrl-C stops)")
    typer.echo(
        f"admin pages: {base_url}/admin  sign in as {login[0]} with the password {login[1]} "
        "(a new one at every start)"
    )
    street = asyncio.create_task(run_street(base_url, sites, phones, typer.echo))
    if seconds:
        asyncio.get_running_loop().call_later(seconds, setattr, server, "should_exit", True)
    await serving
    street.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await street
