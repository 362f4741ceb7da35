"""`beacon-agent enroll` against a real server: the token and the server's address land in the state
directory, and `beacon-agent run` then reports to that server with no setting edited."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from beacon_agent.cli import app
from beacon_agent.config import AgentSettings
from server.sites.models import Gateway
from tests.bluez import MockBlueZ, bluez_fixture  # noqa: F401
from tests.conftest import Clock, LiveServer
from tests.world import make_charity

START_S = 30.0


def gateway_env(tmp_path: Path) -> dict[str, str]:
    """A gateway's environment: its own state directory, and an agent.toml that names no server."""
    config = tmp_path / "agent.toml"
    config.write_text('adapter = "hci0"\nwatchdog_seconds = 60\n')
    return {"BEACON_AGENT_STATE_DIR": str(tmp_path / "state"), "BEACON_AGENT_CONFIG": str(config)}


def enroll(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["enroll", *args], env=env)


@pytest.mark.dbus
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_enroll_then_run_reports_to_the_enrolled_server(
    bluez: MockBlueZ, live_server: LiveServer, session: Session, clock: Clock, tmp_path: Path
):
    code = make_charity(session, clock()).enrolment_code
    env = gateway_env(tmp_path)
    enrolled = enroll(env, "--server", live_server.url + "/", "--code", code)
    assert enrolled.exit_code == 0, enrolled.output
    assert f"server address {live_server.url} in {tmp_path / 'state' / 'server_url'}" in enrolled.stdout
    assert "note" not in enrolled.output, "nothing is left to edit"
    token = tmp_path / "state" / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700

    # The agent as systemd starts it: `beacon-agent run`, its settings from the state dir and agent.toml.
    agent = subprocess.Popen(
        [sys.executable, "-m", "beacon_agent", "run"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_S
        while (seen := _last_seen(session)) is None and agent.poll() is None:
            assert time.monotonic() < deadline, "the agent's first heartbeat did not arrive"
            time.sleep(0.1)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            _, stderr = agent.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            _, stderr = agent.communicate()
    assert seen is not None, f"the agent stopped without reporting: {stderr}"
    assert f"delivering to {live_server.url}" in stderr


def _last_seen(session: Session):
    session.expire_all()
    return session.scalar(select(Gateway.last_seen_at))


def test_the_saved_address_wins_over_agent_toml_but_not_over_the_environment(tmp_path: Path, monkeypatch):
    env = gateway_env(tmp_path)
    Path(env["BEACON_AGENT_CONFIG"]).write_text('server_url = "https://nahbar.example.org"\n')
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert AgentSettings().server_url == "https://nahbar.example.org", "before enrolment, agent.toml's"
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "server_url").write_text("https://hospiz.example.org\n")
    assert AgentSettings().server_url == "https://hospiz.example.org"
    monkeypatch.setenv("BEACON_AGENT_SERVER_URL", "http://127.0.0.1:9")
    assert AgentSettings().server_url == "http://127.0.0.1:9"


def test_the_state_dir_from_agent_toml_is_where_the_address_is_read(tmp_path: Path, monkeypatch):
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path / "elsewhere"}"\n')
    monkeypatch.setenv("BEACON_AGENT_CONFIG", str(config))
    monkeypatch.delenv("BEACON_AGENT_STATE_DIR", raising=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "server_url").write_text("https://hospiz.example.org")
    assert AgentSettings().server_url == "https://hospiz.example.org"


def test_a_used_code_says_so_plainly(live_server: LiveServer, session: Session, clock: Clock, tmp_path: Path):
    code = make_charity(session, clock()).enrolment_code
    env = gateway_env(tmp_path)
    assert enroll(env, "--server", live_server.url, "--code", code).exit_code == 0
    again = enroll(env, "--server", live_server.url, "--code", code)
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        "enrolment failed: this code was already used (a code works only once); "
        "ask the charity's admin for a new one"
    )
    unknown = enroll(env, "--server", live_server.url, "--code", "ABCD-EFGH-JKLM")
    assert "check it for typos" in unknown.stderr


def test_an_address_that_is_not_a_nahbar_server(tmp_path: Path):
    env = gateway_env(tmp_path)
    with LiveServer(FastAPI()) as other:  # a web server without Nahbar's routes
        result = enroll(env, "--server", other.url, "--code", "ABCD-EFGH-JKLM")
    assert result.exit_code == 1
    assert "answered HTTP 404, not as a Nahbar server does; check the --server address" in result.stderr
    assert not (tmp_path / "state" / "server_url").exists()
