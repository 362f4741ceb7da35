"""The development placeholder secret never leaves development on one's own machine: the settings refuse it
in production and test, `nahbar serve` refuses it on an address other machines reach, and the demo makes a
random key of its own on its first run (0600, beside its database) and keeps using it."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from server.core.config import PLACEHOLDER_SECRET, Settings
from server.core.db import make_engine, make_sessionmaker
from server.core.migrate import upgrade
from server.demo.secret import SECRET_FILE, DemoSecretRefused, with_demo_secret
from server.subscribers.models import Subscriber
from tests.conftest import TEST_SECRET

NAHBAR = Path(sys.executable).parent / "nahbar"


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_settings_refuse_the_placeholder_outside_development(environment):
    for weak in (PLACEHOLDER_SECRET, "short"):
        with pytest.raises(
            ValidationError, match=f"NAHBAR_SECRET_KEY .* NAHBAR_ENVIRONMENT is {environment}"
        ):
            Settings(_env_file=None, environment=environment, secret_key=weak)
    assert (
        Settings(_env_file=None, environment=environment, secret_key=TEST_SECRET).environment == environment
    )
    assert Settings(_env_file=None).has_placeholder_secret  # development on one's own machine may


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`nahbar serve` as an operator starts it, with only the given NAHBAR_* variables and no .env file, on a
    port that is taken: a refusal exits with 2 before binding, a server that did not refuse fails to bind."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("NAHBAR_")}
    env = clean | {"NAHBAR_DATABASE_URL": f"sqlite:///{tmp_path / 'nahbar.db'}"} | env
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - every interface, so that no --host below can bind it
        taken.listen()
        port = taken.getsockname()[1]
        return subprocess.run(
            [str(NAHBAR), "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.mark.slow
@pytest.mark.parametrize("environment", ["production", "test"])
def test_serve_refuses_the_placeholder_outside_development(tmp_path, environment):
    refused = serve(tmp_path, NAHBAR_ENVIRONMENT=environment)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("nahbar: NAHBAR_SECRET_KEY must be set to a random value"), (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "nahbar.db").exists()  # nothing was opened


@pytest.mark.slow
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "nahbar.example.org"])
def test_serve_in_development_refuses_the_placeholder_on_an_address_others_reach(tmp_path, host):
    refused = serve(tmp_path, "--host", host, NAHBAR_ENVIRONMENT="development")
    assert refused.returncode == 2, refused.stderr
    assert f"NAHBAR_SECRET_KEY is the development placeholder, and --host {host}" in refused.stderr
    assert "Traceback" not in refused.stderr


def demo_database(tmp_path: Path) -> tuple[Settings, object]:
    url = f"sqlite:///{tmp_path / 'var' / 'nahbar.db'}"
    (tmp_path / "var").mkdir(parents=True)
    engine = make_engine(url)
    upgrade(engine)
    return Settings(_env_file=None, database_url=url), engine


def test_the_demo_makes_its_own_secret_once_and_keeps_it(tmp_path):
    settings, engine = demo_database(tmp_path)
    sessions = make_sessionmaker(engine)
    try:
        first, kept_in = with_demo_secret(settings, sessions)
        again, kept_again = with_demo_secret(settings, sessions)
    finally:
        engine.dispose()
    assert kept_in == kept_again == tmp_path / "var" / SECRET_FILE
    secret = first.secret_key.get_secret_value()
    assert secret != PLACEHOLDER_SECRET
    assert len(secret) >= 32
    assert again.secret_key.get_secret_value() == secret  # reused, not made again
    assert stat.S_IMODE(kept_in.stat().st_mode) == 0o600
    assert kept_in.read_text().strip() == secret
    # Another demo (another directory) gets a key of its own.
    other, other_engine = demo_database(tmp_path / "elsewhere")
    try:
        theirs, _ = with_demo_secret(other, make_sessionmaker(other_engine))
        # A key the operator set is used as it is.
        chosen = other.model_copy(update={"secret_key": SecretStr(TEST_SECRET)})
        assert with_demo_secret(chosen, make_sessionmaker(other_engine)) == (chosen, None)
    finally:
        other_engine.dispose()
    assert theirs.secret_key.get_secret_value() != secret


def test_the_demo_refuses_a_database_whose_phones_another_key_sealed(tmp_path):
    settings, engine = demo_database(tmp_path)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add(
            Subscriber(
                device_token_hash="d" * 64, identity_key_sealed=b"s" * 44, rotation_exponent=10, scopes=[]
            )
        )
    try:
        with pytest.raises(DemoSecretRefused, match="make clean"):
            with_demo_secret(settings, sessions)
    finally:
        engine.dispose()
    assert not (tmp_path / "var" / SECRET_FILE).exists()
