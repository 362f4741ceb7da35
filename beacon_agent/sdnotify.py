"""A tiny sd_notify(3) client: tell systemd we are ready, alive or stopping, without a dependency.

The protocol is one AF_UNIX datagram of newline-separated `KEY=VALUE` lines sent to `$NOTIFY_SOCKET`; an
address starting with '@' lives in the abstract namespace. Outside systemd (no `$NOTIFY_SOCKET`) every call
is a harmless no-op that answers False, so the agent runs the same in a terminal.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` to the service manager; True if it was sent, False outside systemd or on error."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False  # unset, or a transport we do not speak (vsock:)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        # systemd gone or socket unreachable: the agent keeps scanning; the watchdog, if any, will act.
        return False
    return True


def ready(status_text: str | None = None) -> bool:
    """Tell systemd start-up is finished (Type=notify), optionally with a status line."""
    return notify("READY=1" if status_text is None else f"READY=1\nSTATUS={_one_line(status_text)}")


def watchdog() -> bool:
    """Ping the watchdog; call it at least every `watchdog_interval() / 2` seconds."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """Tell systemd a clean shutdown has begun."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Set the one-line status that `systemctl status beacon-agent` shows."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds of the watchdog systemd set for this process (WatchdogSec=), or None if there is none."""
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None  # the variables were meant for another process, e.g. our parent shell
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment that systemd would act on.
    return " ".join(text.splitlines())
