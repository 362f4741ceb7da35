"""`make demo` serves, decides prompts live for simulated phones, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_LINE = re.compile(r"admin pages: (http://\S+/admin)  sign in as (\S+) with the password (\S+) ")


def signed_in_to_the_admin_pages(output: str, port: int) -> None:
    """The printed login works: the overview shows the demo's charities."""
    found = ADMIN_LINE.search(output)
    assert found is not None, output
    url, email, password = found.groups()
    assert url == f"http://127.0.0.1:{port}/admin"
    with httpx.Client(timeout=10, follow_redirects=True) as browser:
        answer = browser.post(f"{url}/login", data={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        assert str(answer.url) == url
        assert "Hospiz am Park" in answer.text
        assert "Tafel Nordstadt" in answer.text


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_make_demo_serves_decides_prompts_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = os.environ | {"NAHBAR_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        ["make", "-s", "demo", f"DEMO_ARGS=--port {port} --phones 8"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so Ctrl-C can be sent to make and the demo alike
    )
    lines: list[str] = []
    try:
        started = time.monotonic()
        ready = False
        # The first `make demo` installs the demo's wheels into the virtualenv before it serves.
        while not ready and time.monotonic() - started < 150:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready, "demo never became ready"
        ready_at = time.monotonic()
        selector = selectors.DefaultSelector()
        assert demo.stdout is not None
        selector.register(demo.stdout, selectors.EVENT_READ)
        while time.monotonic() - ready_at < 60 and not any("got a prompt" in line for line in lines):
            if selector.select(timeout=1):
                line = demo.stdout.readline()
                if not line:
                    break
                lines.append(line)
        assert any("server decided prompted" in line for line in lines), "".join(lines)
        assert any("got a prompt" in line for line in lines), "".join(lines)
        signed_in_to_the_admin_pages("".join(lines), port)
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=20)
        lines.append(rest)
    output = "".join(lines)
    assert "demo stopped" in output, output
    assert "Traceback" not in output, output
    # Not the development placeholder: a random key of its own, beside its database, readable by its owner.
    secret = tmp_path / "demo-secret-key"
    assert f"the demo's own secret key is in {secret}" in output, output
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32


@pytest.mark.parametrize("hour", range(24))
def test_the_demo_street_lies_where_it_is_day_so_prompts_show_at_any_hour(hour):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from server.core import const
    from server.demo.seed import daytime_zone

    now = datetime(2026, 11, 26, hour, 30, tzinfo=UTC)
    local = now.astimezone(ZoneInfo(daytime_zone(now))).strftime("%H:%M")
    assert const.DEFAULT_QUIET_END <= local < const.DEFAULT_QUIET_START
    if 8 <= hour <= 16:  # 09:30 to 17:30 in Berlin in November
        assert daytime_zone(now) == "Europe/Berlin"
