"""docs/deployment.md and deploy/ as an operator uses them: the units (and the gateway's, from
firmware_notes/) pass `systemd-analyze verify`, the proxy, the unit and the settings template agree, the
documented key command makes keys the server takes, `--env-file` is how commands by hand get the service's
settings, and the restore drill, run exactly as the guide writes it, gives a server that carries on with the
same phones, caps and outbox."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from dotenv import dotenv_values
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from server.core.config import Settings
from server.core.db import make_engine
from server.core.migrate import current_revision, head_revision
from server.delivery.providers.webpush import WebPushProvider
from server.prompts.models import Delivery, PromptDecision
from tests.conftest import POSTGRES_URL, TEST_SECRET, _admin_engine, require_part
from tests.delivery_world import Browser, Peer, add_channel, subscriber_of
from tests.processes import clean_env, run
from tests.served import Served
from tests.world import Phone, event, make_charity

ROOT: Final = Path(__file__).resolve().parent.parent
GUIDE: Final = ROOT / "docs" / "deployment.md"
DEPLOY: Final = ROOT / "deploy"
UNITS: Final = ("nahbar.service", "nahbar-backup.service", "nahbar-backup.timer")
# The gateway's unit, which firmware_notes/raspberry-pi-gateway.md installs on the Pi.
AGENT_UNIT: Final = ROOT / "firmware_notes" / "beacon-agent.service"
WAIT_S: Final = 30.0


def guide_block(marker: str) -> str:
    """The shell block that follows `<!-- marker -->` in the guide, as written."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```sh\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found is not None, f"docs/deployment.md has no block marked {marker!r}"
    return found.group(1)


def exec_start(unit: str) -> list[str]:
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    require_part(analyze is not None, "systemd-analyze (Debian package systemd)")
    assert analyze is not None
    # A root of their own: the units where the guide installs them, systemd's own units beside them, and the
    # programs they start where the guide installs those (verify checks that each exists and may run).
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    installed = root / "etc/systemd/system"
    installed.mkdir(parents=True)
    sources = [DEPLOY / name for name in UNITS] + [AGENT_UNIT]
    for source in sources:
        unit = source.read_text()
        (installed / source.name).write_text(unit)
        for line in unit.splitlines():
            if re.match(r"Exec\w*=", line):
                program = root / shlex.split(line.partition("=")[2])[0].lstrip("-@:+!").lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", *(source.name for source in sources)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Not even a warning: systemd ignores a misspelt key or a bad value with one and exits 0.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_proxy_the_unit_and_the_settings_template_agree():
    argv = exec_start((DEPLOY / "nahbar.service").read_text())
    assert argv[:3] == ["/opt/nahbar/venv/bin/nahbar", "--env-file", "/etc/nahbar/nahbar.env"]
    serving = argv[argv.index("serve") :]
    listen = f"{serving[serving.index('--host') + 1]}:{serving[serving.index('--port') + 1]}"
    proxied = re.findall(r"^\s*reverse_proxy (\S+)", (DEPLOY / "Caddyfile").read_text(), re.MULTILINE)
    assert proxied == [listen], "Caddy must pass requests to where the unit serves"
    # The template as the guide installs it, with its one blank filled in, is a valid production setup
    # that trusts the proxy on this machine.
    template = dotenv_values(DEPLOY / "nahbar.env.example")
    assert template["NAHBAR_SECRET_KEY"] == "", "the template must not ship a secret"
    settings = Settings(_env_file=DEPLOY / "nahbar.env.example", secret_key="x" * 48)  # type: ignore[call-arg]
    assert settings.environment == "production"
    assert settings.database_url == "postgresql://nahbar@/nahbar"
    assert (
        make_url(settings.database_url).username
        == "nahbar"
        == re.search(r"^User=(\S+)", (DEPLOY / "nahbar.service").read_text(), re.MULTILINE).group(1)
    )  # type: ignore[union-attr]
    proxy_host = listen.rpartition(":")[0]
    assert any(proxy_host in str(network) for network in settings.trusted_proxies)


def test_the_guides_web_push_key_command_makes_keys_the_server_takes(tmp_path):
    [command] = guide_block("vapid-keys").strip().splitlines()
    interpreter, _, rest = command.partition(" ")
    assert interpreter == "/opt/nahbar/venv/bin/python"
    done = subprocess.run(
        [sys.executable, *shlex.split(rest)], capture_output=True, text=True, timeout=60, check=True
    )
    keys = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(keys) == {"NAHBAR_VAPID_PRIVATE_KEY", "NAHBAR_VAPID_PUBLIC_KEY"}
    settings = Settings(
        vapid_private_key=keys["NAHBAR_VAPID_PRIVATE_KEY"],
        vapid_public_key=keys["NAHBAR_VAPID_PUBLIC_KEY"],
        vapid_subject="mailto:push@nahbar.example.org",
    )
    provider = WebPushProvider.from_settings(settings)  # refuses a public key of another private key
    assert provider.public_key == keys["NAHBAR_VAPID_PUBLIC_KEY"]


def test_commands_by_hand_read_the_services_settings_file(empty_database_url, tmp_path):
    """`nahbar --env-file FILE migrate` migrates the database FILE names; the environment wins over it."""
    settings_file = tmp_path / "nahbar.env"
    settings_file.write_text(
        "# as /etc/nahbar/nahbar.env\n"
        f"NAHBAR_DATABASE_URL={empty_database_url}\nNAHBAR_SECRET_KEY={TEST_SECRET}\n"
    )
    cwd = tmp_path / "service"
    cwd.mkdir()
    migrated = run(["nahbar", "--env-file", str(settings_file), "migrate"], env=clean_env(), cwd=cwd)
    assert migrated.returncode == 0, migrated.stderr
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    elsewhere = "sqlite:///" + str(tmp_path / "from-the-environment.db")
    again = run(
        ["nahbar", "--env-file", str(settings_file), "migrate"],
        env=clean_env(NAHBAR_DATABASE_URL=elsewhere),
        cwd=cwd,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"database at head: {elsewhere}"


# --- the restore drill ---------------------------------------------------------------------------------


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is around noon now, so quiet hours never interfere."""
    offset = (12 - now.hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def walk_past(url: str, gateway: dict[str, str], phone: Phone, at: datetime, key: str) -> dict[str, object]:
    """The gateway reports the phone entering and staying 20 s (the campaign's minimum dwell is 15 s)."""
    batch = {
        "events": [
            event(f"{key}-enter", phone, at - timedelta(seconds=20)),
            event(f"{key}-dwell", phone, at, "dwell", 20),
        ]
    }
    answer = httpx.post(f"{url}/gateway/v1/events", json=batch, headers=gateway, timeout=WAIT_S)
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.fixture
def vapid_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.fixture
def drill_names(tmp_path) -> Iterator[dict[str, str]]:
    """A role of its own, a drill database name and a backup folder; the role and database go afterwards."""
    names = {
        "ROLE": f"nahbar_r_{uuid.uuid4().hex[:8]}",
        "DRILL": f"nahbar_d_{uuid.uuid4().hex[:8]}",
        "BACKUPS": str(tmp_path / "backups"),
    }
    Path(names["BACKUPS"]).mkdir()
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{names["ROLE"]}" LOGIN'))
    yield names
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{names["DRILL"]}" WITH (FORCE)'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{names["ROLE"]}"'))
    admin.dispose()


def run_guide_block(marker: str, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A block of the drill as written, in bash as the postgres user runs it, with the names block's
    variables set to the test's own (the guide tells the operator to set them for their machine)."""
    server = make_url(POSTGRES_URL)
    env = clean_env(
        PGHOST=server.host or "127.0.0.1",
        PGPORT=str(server.port or 5432),
        PGUSER=server.username or "postgres",
    )
    env.pop("PGDATABASE", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", guide_block(marker)],
        env=env | names,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{marker}: {done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_restore_drill_as_written_gives_a_server_with_the_same_phones_caps_and_outbox(
    database_url, session, tmp_path, vapid_pem, drill_names
):
    live = make_url(database_url)
    names = drill_names | {"DATABASE": str(live.database)}
    assigned = re.findall(r"^(\w+)=", guide_block("restore-drill: names"), re.MULTILINE)
    assert sorted(assigned) == sorted(names), "the drill's names are the ones this test sets"

    browser = Browser.new()
    push = Peer(answers=[(503, {}, b"")])  # down while the first server runs: the prompt stays due
    push_env = {
        "NAHBAR_VAPID_PRIVATE_KEY": vapid_pem,
        "NAHBAR_VAPID_SUBJECT": "mailto:push-ops@nahbar.example.org",
        "NAHBAR_ALLOW_PRIVATE_PUSH_HOSTS": "true",  # the push service is on loopback
    }
    now = datetime.now(UTC)
    code = make_charity(session, now, timezone=noon_zone(now)).enrolment_code
    try:
        with Served(tmp_path, database_url, **push_env) as first:
            enrolled = httpx.post(f"{first.url}/gateway/v1/enroll", json={"code": code}, timeout=WAIT_S)
            assert enrolled.status_code == 200, enrolled.text
            gateway = {"Authorization": f"Bearer {enrolled.json()['token']}"}
            body = {"consent_text_version": "2026-11", "scopes": ["volunteer"], "language": "en"}
            opted = httpx.post(f"{first.url}/mobile/v1/optin", json=body, timeout=WAIT_S)
            assert opted.status_code == 201, opted.text
            data = opted.json()
            phone = Phone(
                {"Authorization": f"Bearer {data['device_token']}"},
                bytes.fromhex(data["identity_key"]),
                data["rotation_exponent"],
            )
            person = subscriber_of(session, phone).id
            add_channel(session, person, "webpush", f"{push.url}/push/sub-1", **browser.keys())
            # Five minutes ago, so that the walk past the restored server below is another visit.
            assert walk_past(first.url, gateway, phone, now - timedelta(minutes=5), "before")["prompts"] == 1

            def failed_once() -> bool:
                session.expire_all()
                row = session.scalar(select(Delivery).where(Delivery.channel_kind == "webpush"))
                session.rollback()
                return row is not None and row.last_error is not None

            until(failed_once, "the first server tried the push service")
        # The first server is gone (as a dead machine is); its prompt waits, due, in the database.
        session.expire_all()
        [waiting] = session.scalars(select(Delivery).where(Delivery.channel_kind == "webpush")).all()
        assert (waiting.status, waiting.sent_at) == ("pending", None)
        session.rollback()

        restored = run_guide_block("restore-drill: restore", names)
        counts = re.findall(r"^\s*(\d+)\s*$", restored.stdout, re.MULTILINE)
        assert counts == ["1", "1"], restored.stdout  # one opted-in phone, in the copy and the live one

        drill_url = live.set(username=names["ROLE"], password=None, database=names["DRILL"])
        drill_db = drill_url.render_as_string(hide_password=False)
        with pytest.raises(RuntimeError, match="NAHBAR_SECRET_KEY does not open the identity keys"):
            with Served(tmp_path, drill_db, NAHBAR_SECRET_KEY="another-secret-key-" + "y" * 32):
                pass

        push.answers = [(201, {}, b"")]
        engine = make_engine(drill_db)
        try:
            with Served(tmp_path, drill_db, **push_env) as second:
                # The outbox: the prompt that was due goes out from the restored server.
                [_, resent] = push.wait_for(2, timeout=WAIT_S)
                payload = json.loads(
                    http_ece.decrypt(
                        resent.body,
                        private_key=browser.private_key,
                        auth_secret=browser.auth,
                        version="aes128gcm",
                    )
                )
                assert payload["title"] == "Help?"
                # The phone: its device token still works, and its prompt is in its inbox.
                me = httpx.get(
                    f"{second.url}/mobile/v1/me/preferences", headers=phone.headers, timeout=WAIT_S
                )
                assert me.status_code == 200, me.text
                inbox = httpx.get(f"{second.url}/mobile/v1/me/prompts", headers=phone.headers, timeout=WAIT_S)
                assert inbox.status_code == 200, inbox.text
                assert len(inbox.json()["prompts"]) == 1
                # Its rotating identifier still resolves, and today's cap holds: not prompted again.
                again = walk_past(second.url, gateway, phone, datetime.now(UTC), "after")
                assert (again["prompts"], again["rejected"]) == (0, [])
                with engine.connect() as connection:
                    decisions = connection.execute(
                        select(PromptDecision.outcome, PromptDecision.reason)
                        .where(PromptDecision.subscriber_id == person)
                        .order_by(PromptDecision.id)
                    ).all()
                    # Each visit: the enter is too short to decide on, the dwell is decided.
                    assert [tuple(d) for d in decisions] == [
                        ("suppressed", "dwell_too_short"),
                        ("prompted", "prompted"),
                        ("suppressed", "dwell_too_short"),
                        ("suppressed", "global_daily_cap"),
                    ]
                    sent = connection.execute(
                        select(Delivery.status).where(Delivery.channel_kind == "webpush")
                    ).scalar_one()
                    assert sent == "sent"
        finally:
            engine.dispose()

        run_guide_block("restore-drill: clean up", names)
        assert not (Path(names["BACKUPS"]) / "drill.dump").exists()
        admin = _admin_engine()
        with admin.connect() as connection:
            left = connection.execute(
                text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": names["DRILL"]}
            ).scalar_one()
        admin.dispose()
        assert left == 0, "the drill's database is still there"
    finally:
        push.close()
