"""The gateway agent installs and runs without any of the server's packages."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from importlib.metadata import requires

import httpx
import pytest

from beacon_agent.enrol import EnrolmentError, enrol
from tests.conftest import Clock
from tests.world import make_charity

SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "psycopg", "apscheduler", "argon2")

_BLOCKED_IMPORT = """
import importlib.abc, json, sys
BLOCKED = set(json.loads(sys.argv[1]))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is a server package and must not be imported by the agent")
        return None
sys.meta_path.insert(0, Block())
import pkgutil, importlib, beacon_agent
modules = [m.name for m in pkgutil.walk_packages(beacon_agent.__path__, "beacon_agent.")]
for name in modules:
    importlib.import_module(name)
from beacon_agent.cli import app
from typer.testing import CliRunner
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
print(json.dumps(sorted(modules)))
"""


def test_agent_imports_and_runs_with_server_packages_blocked():
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, json.dumps(SERVER_ONLY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "beacon_agent.cli" in json.loads(done.stdout)


def test_the_agent_extra_does_not_pull_server_packages():
    agent_requirements = [r for r in requires("nahbar") or [] if 'extra == "agent"' in r]
    assert agent_requirements, "the agent extra must exist"
    names = {r.split(";")[0].split(">")[0].split("[")[0].strip().lower() for r in agent_requirements}
    assert "bleak" in names
    assert not names & set(SERVER_ONLY)


def test_enrol_stores_the_token_privately(live_server, session, clock: Clock, tmp_path):
    code = make_charity(session, clock()).enrolment_code
    token_file = tmp_path / "state" / "token"
    with httpx.Client(base_url=live_server.url) as client:
        enrolled = enrol(client, code, tmp_path / "state")
        assert enrolled.gateway_id > 0
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        assert token_file.read_text().startswith("ngw_")
        assert (tmp_path / "state" / "server_url").read_text() == live_server.url + "\n"
        with pytest.raises(EnrolmentError, match="this code was already used .*new one"):
            enrol(client, code, tmp_path / "state")
