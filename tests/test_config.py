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
