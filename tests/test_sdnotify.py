"""sd_notify over a real unix datagram socket, as systemd's would be."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from beacon_agent import sdnotify


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing where systemd's notify socket would, announced in NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def _received(sock: socket.socket) -> bytes:
    return sock.recv(4096)  # non-blocking: the datagram is already queued once notify() returned


def test_ready_reaches_the_manager(manager: socket.socket):
    assert sdnotify.ready() is True
    assert _received(manager) == b"READY=1"


def test_each_helper_sends_its_assignment(manager: socket.socket):
    assert sdnotify.watchdog()
    assert _received(manager) == b"WATCHDOG=1"
    assert sdnotify.stopping()
    assert _received(manager) == b"STOPPING=1"
    assert sdnotify.status("scanning on hci0")
    assert _received(manager) == b"STATUS=scanning on hci0"


def test_a_status_cannot_smuggle_another_assignment(manager: socket.socket):
    assert sdnotify.ready("up\nWATCHDOG=trigger")
    assert _received(manager) == b"READY=1\nSTATUS=up WATCHDOG=trigger"


def test_abstract_namespace_address(monkeypatch: pytest.MonkeyPatch):
    name = f"nahbar-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("READY=1")
        assert _received(sock) == b"READY=1"


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_a_vanished_manager_is_not_an_error(tmp_path: Path):
    assert sdnotify.notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_watchdog_interval_for_this_process():
    me = str(os.getpid())
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": me}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "1500000"}) == 1.5


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},  # meant for another process
    ],
)
def test_no_watchdog_interval(environ: dict[str, str]):
    assert os.getpid() != 1
    assert sdnotify.watchdog_interval(environ) is None
