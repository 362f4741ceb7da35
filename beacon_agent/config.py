"""Agent settings: /etc/beacon-agent/agent.toml, overridden by BEACON_AGENT_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("/etc/beacon-agent/agent.toml")


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEACON_AGENT_", extra="ignore")

    server_url: str = "http://127.0.0.1:8000"
    state_dir: Path = Path("/var/lib/beacon-agent")
    adapter: str = "hci0"
    watchdog_seconds: float = Field(default=90, gt=0)
    outbox_max_events: int = Field(default=100_000, ge=100)

    @property
    def token_file(self) -> Path:
        return self.state_dir / "token"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("BEACON_AGENT_CONFIG", DEFAULT_CONFIG_FILE))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
