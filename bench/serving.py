"""The server as the benchmarks run it: a process on a database made for the run, with the settings a
benchmark needs (its secret key, fresh VAPID keys, quiet logs), waited for until every worker answers ready,
and ended with SIGTERM (then SIGKILL if it does not stop)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx

SECRET: Final = "bench-secret-key-that-is-long-enough-0123456789"
ROOT: Final = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's server: the database, the secret key, fresh VAPID keys (so that
    Web Push channels are accepted), push services on this machine allowed, warnings only; `extra` adds or
    overrides."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    vapid = ec.generate_private_key(ec.SECP256R1())
    pem = vapid.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return (
        dict(os.environ)
        | {
            "NAHBAR_DATABASE_URL": url,
            "NAHBAR_SECRET_KEY": SECRET,
            "NAHBAR_VAPID_PRIVATE_KEY": pem,
            "NAHBAR_VAPID_SUBJECT": "mailto:push-ops@nahbar.example.org",
            "NAHBAR_LOG_LEVEL": "WARNING",
            # The benchmarks' push services listen on this machine, as the tests' and the demo's do.
            "NAHBAR_ALLOW_PRIVATE_PUSH_HOSTS": "true",
        }
        | extra
    )


@contextmanager
def serving(
    command: Sequence[str],
    env: dict[str, str],
    port: int,
    log: Path,
    *,
    workers: int = 1,
    ready_within_s: float = 60,
    stop_within_s: float = 60,
) -> Iterator[tuple[str, int]]:
    """Run `command` (a server listening on `port`); yield its base URL and pid once ready.

    Ready means /readyz answered 200 on 8 fresh connections in a row per worker: each connection goes to
    whichever worker accepts it first, and a worker answers ready only once it has loaded the keys."""
    with log.open("ab") as stderr:
        process = subprocess.Popen(list(command), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log, workers, ready_within_s)
        yield base, process.pid
    finally:
        end(process, stop_within_s)


def _wait_ready(
    base: str, process: subprocess.Popen[bytes], log: Path, workers: int, within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    in_a_row = 0
    while in_a_row < 8 * workers:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready within {within_s:.0f} s")
        try:
            ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            ready = False
        in_a_row = in_a_row + 1 if ready else 0
        time.sleep(0.02 if ready else 0.1)


def end(process: subprocess.Popen[bytes], within_s: float = 60) -> None:
    """SIGTERM (a graceful shutdown; cProfile writes its file), then SIGKILL if it takes too long."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(within_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
