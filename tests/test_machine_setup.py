"""The two commands of README's quickstart on a fresh machine: `make demo` needs no compiler (wheels of the
server and the agent only), and `make test` sets the machine up first with the script CI runs too.

The setup script's paths that would change the machine are run against a fake package database, privileges
and apt-get (the operating system's edges, put first on PATH); nothing is installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What only dpkg can answer about (the rest the script finds by the files and commands themselves).
DPKG_CHECKED = [
    "make",
    "git",
    "dbus-daemon",
    "libdbus-1-dev",
    "libglib2.0-dev",
    "pkg-config",
    "chromium",
    "fonts-liberation",
    "libatomic1",
    "systemd",
]


def _dry_run(target: str, venv: Path) -> list[str]:
    """The commands `make <target>` would run on a machine where nothing was installed yet."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.rstrip() for line in done.stdout.splitlines()]


def _pip_installs(commands: list[str]) -> list[list[str]]:
    return [shlex.split(c) for c in commands if " -m pip install " in c]


def test_make_demo_installs_wheels_of_the_server_and_the_agent_only(tmp_path):
    commands = _dry_run("demo", tmp_path / "venv")
    installs = _pip_installs(commands)
    assert installs, commands
    for argv in installs:
        assert "--only-binary=:all:" in argv, argv
        assert not [a for a in argv if "dev" in a], argv
    assert installs[-1][-2:] == ["-e", ".[agent,server]"]
    # The one exception: http-ece, pure Python, published as source only.
    assert [a for a in installs[-1] if a.startswith("--no-binary")] == ["--no-binary=http-ece"]
    assert not [c for c in commands if "setup-machine" in c], "the demo must not need root or system packages"
    assert commands[-1].endswith("/bin/nahbar demo")


def test_make_test_sets_the_machine_up_before_installing_anything(tmp_path):
    commands = _dry_run("test", tmp_path / "venv")
    assert commands[0] == "bash scripts/setup-machine"
    installs = _pip_installs(commands)
    assert installs[-1][-2:] == ["-e", ".[dev]"]
    # The whole suite: in worker processes, and the API fuzz (whose cases xdist does not collect) alone.
    suite, fuzz = commands[-2].split(), commands[-1].split()
    assert suite[0].endswith("/bin/pytest"), suite
    assert "-n" in suite, suite
    assert suite[-1] == "--ignore=tests/test_api_fuzz.py", suite
    assert fuzz[0].endswith("/bin/pytest"), fuzz
    assert fuzz[1:] == ["tests/test_api_fuzz.py"], fuzz


def _bare_machine(tmp_path: Path, uid: int) -> tuple[dict[str, str], Path]:
    """PATH with a package database that knows no package, `id -u` answering `uid`, and an apt-get that
    only writes down how it was called; returns the environment and that record."""
    fake = tmp_path / "bin"
    fake.mkdir()
    record = tmp_path / "apt-get.calls"
    real_id = shutil.which("id")
    scripts = {
        "dpkg-query": "exit 1",
        "id": f'[ "$1" = "-u" ] && {{ echo {uid}; exit 0; }}; exec {real_id} "$@"',
        "apt-get": f'echo "$*" >> {record}',
        "sudo": "exit 1",  # there, so the printed command starts with it
    }
    for name, body in scripts.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake / name).chmod(0o755)
    return os.environ | {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}, record


def _setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/setup-machine"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_setup_not_as_root_prints_the_one_install_command_and_fails(tmp_path):
    env, record = _bare_machine(tmp_path, uid=1000)
    done = _setup(env)
    assert done.returncode == 1
    prefix = "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
    [command] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith(prefix)]
    assert set(DPKG_CHECKED) <= set(command.removeprefix(prefix).split()), command
    assert not record.exists(), "it ran apt-get without being root"
    assert "PostgreSQL" not in done.stdout  # it stopped at the packages


def test_setup_as_root_updates_then_installs_what_is_missing(tmp_path):
    env, record = _bare_machine(tmp_path, uid=0)
    done = _setup(env)
    calls = record.read_text().splitlines()
    assert calls[0].startswith("update "), calls
    assert len(calls) == 2, calls
    install = calls[1].split()
    assert install[:2] == ["install", "-y"]
    assert "--no-install-recommends" in install
    assert set(DPKG_CHECKED) <= set(install), install
    # The fake installed nothing, and the script checks after apt-get instead of trusting it.
    assert done.returncode == 1
    assert "still missing after apt-get install: " in done.stderr
