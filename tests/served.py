"""`nahbar serve` in a subprocess on a loopback address: for what only the real command shows (its uvicorn
settings, its workers, everything it writes to stdout and stderr)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_SECRET

NAHBAR = Path(sys.executable).with_name("nahbar")


def sqlite_copy(template: Path, folder: Path) -> str:
    """A private copy of the migrated SQLite template, as a database URL."""
    path = folder / "served.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def records(output: str) -> list[dict[str, Any]]:
    """Every line of a JSON log as a dict (a line that is not JSON fails the parse, naming itself)."""
    parsed = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not a JSON line: {line!r}") from exc
        assert isinstance(record, dict), f"not a JSON object: {line!r}"
        parsed.append(record)
    return parsed


class Served:
    """Runs `nahbar serve` with `env` (NAHBAR_* of this process left out) until `stop()`; ready on entry."""

    def __init__(
        self, folder: Path, database_url: str, *, host: str = "127.0.0.1", workers: int = 1, **env: str
    ) -> None:
        self.folder = folder
        self.host = host
        with socket.socket() as sock:
            sock.bind((host, 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        self.workers = workers
        own = {k: v for k, v in os.environ.items() if not k.startswith("NAHBAR_")}
        self.env = own | {
            "NAHBAR_ENVIRONMENT": "test",
            "NAHBAR_SECRET_KEY": TEST_SECRET,
            "NAHBAR_DATABASE_URL": database_url,
            "NAHBAR_PUBLIC_URL": self.url,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.log_path = folder / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Served:
        with self.log_path.open("wb") as out:
            # cwd: a folder without a .env file, so that only `env` configures the server.
            self.process = subprocess.Popen(
                [
                    NAHBAR,
                    "serve",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60  # two workers on a busy two-core machine take a while to start
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nahbar serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"nahbar serve did not become ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 60) -> None:
        """Until the output so far satisfies `condition` (a state to reach, not a speed to check)."""
        deadline = time.monotonic() + timeout
        while not condition(self.output()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server's output never got there:\n{self.output()}")
            time.sleep(0.2)

    def stop(self) -> str:
        """SIGTERM, as a service manager stops it; returns everything it wrote."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.output()
