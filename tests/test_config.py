"""Settings refuse placeholder secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.core.config import PLACEHOLDER_SECRET, Settings


def test_placeholder_secret_is_refused_in_production():
    with pytest.raises(ValidationError, match="NAHBAR_SECRET_KEY"):
        Settings(environment="production", secret_key=PLACEHOLDER_SECRET)
    with pytest.raises(ValidationError, match="NAHBAR_SECRET_KEY"):
        Settings(environment="production", secret_key="short")


def test_development_runs_with_defaults_and_env_overrides(monkeypatch):
    assert Settings().database_url == "sqlite:///var/nahbar.db"
    monkeypatch.setenv("NAHBAR_RETENTION_DAYS", "7")
    monkeypatch.setenv("NAHBAR_ENVIRONMENT", "production")
    monkeypatch.setenv("NAHBAR_SECRET_KEY", "x" * 40)
    settings = Settings()
    assert settings.retention_days == 7
    assert settings.environment == "production"


def test_a_lease_shorter_than_a_slow_push_is_refused_naming_both_settings():
    """Below the time a claimed send can take, every slow push was sent again (60 prompts, 245 pushes)."""
    with pytest.raises(ValidationError) as refused:
        Settings(delivery_lease_seconds=30)  # the old default, under a 10 s push timeout
    message = str(refused.value)
    assert "NAHBAR_DELIVERY_LEASE_SECONDS (30)" in message
    assert "NAHBAR_PUSH_TIMEOUT_SECONDS at 10" in message
    assert "at least 32" in message  # 2 x (5 s to connect + 10 s for the answer) + 2 s to record
    assert Settings(delivery_lease_seconds=32).delivery_lease_seconds == 32
    assert Settings().delivery_lease_seconds == 60  # the default passes its own check
    # A shorter push timeout allows a shorter lease, and the connect timeout follows it down.
    assert Settings(push_timeout_seconds=1, delivery_lease_seconds=6).delivery_lease_seconds == 6
    with pytest.raises(ValidationError, match="NAHBAR_PUSH_TIMEOUT_SECONDS at 1:"):
        Settings(push_timeout_seconds=1, delivery_lease_seconds=5)


def test_the_lease_check_reads_the_environment(monkeypatch):
    monkeypatch.setenv("NAHBAR_PUSH_TIMEOUT_SECONDS", "30")
    with pytest.raises(ValidationError, match="NAHBAR_DELIVERY_LEASE_SECONDS"):
        Settings()  # the default lease of 60 s is too short for 30 s pushes
    monkeypatch.setenv("NAHBAR_DELIVERY_LEASE_SECONDS", "72")
    assert Settings().delivery_lease_seconds == 72


def test_redis_limits_need_a_redis_and_a_metrics_token_must_not_be_guessable():
    with pytest.raises(ValidationError, match="NAHBAR_REDIS_URL"):
        Settings(rate_limit_store="redis")
    assert Settings(rate_limit_store="redis", redis_url="redis://127.0.0.1:6379/0").redis_url is not None
    with pytest.raises(ValidationError, match="at least 16 random characters"):
        Settings(metrics_token="short")
