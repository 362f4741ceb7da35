"""The installed console scripts (`nahbar`, `beacon-agent`) run as a person runs them: in a subprocess, from
a directory of their own, with none of the test process's settings in the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
import pytest

BIN = Path(sys.executable).parent  # the virtualenv pytest runs from, where pip put the console scripts
_SETTINGS_PREFIXES = ("NAHBAR_", "BEACON_AGENT_")
_SYSTEM_VARIABLES = {"DBUS_SYSTEM_BUS_ADDRESS", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without our settings or a system bus, plus `variables`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SETTINGS_PREFIXES) and key not in _SYSTEM_VARIABLES
    }
    return env | {"PYTHONUNBUFFERED": "1", "COLUMNS": "120"} | variables


def run(
    argv: list[str], *, env: dict[str, str], cwd: Path, stdin: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run a console script (argv[0] is its name) to the end; stdin is empty unless given."""
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        env=env,
        cwd=cwd,
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Background:
    """A console script that runs until stopped; stdout and stderr go to a file the test reads meanwhile."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.argv = argv
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [str(BIN / argv[0]), *argv[1:]],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal for it reaches it alone, not pytest
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, within_s: float = 60) -> str:
        """Wait until `text` appears in the output; fail if the command ends or takes too long."""
        deadline = time.monotonic() + within_s
        while text not in (output := self.output()):
            if self.process.poll() is not None:
                pytest.fail(
                    f"{' '.join(self.argv)} ended ({self.process.returncode}) before {text!r}:\n{output}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{' '.join(self.argv)} did not print {text!r} within {within_s} s:\n{output}")
            time.sleep(0.05)
        return output

    def wait_until_ready(self, base_url: str, within_s: float = 60) -> None:
        """Wait until the server's /readyz answers 200; fail if the command ends or takes too long."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                pytest.fail(f"{' '.join(self.argv)} ended ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{base_url}/readyz never answered 200 within {within_s} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, within_s: float = 30) -> int:
        """Send `sig` (SIGTERM: what systemd and `docker stop` send) and wait for the exit status."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(within_s)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{' '.join(self.argv)} did not stop within {within_s} s of {sig.name}:\n{self.output()}"
            )

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
