"""Agent settings: /etc/beacon-agent/agent.toml, overridden by BEACON_AGENT_* environment variables.

The server's address is the one `beacon-agent enroll` saved beside the token, because the token works
there only: it wins over agent.toml (which need not name the server at all); only an environment variable
or an explicit argument overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE: Final = Path("/etc/beacon-agent/agent.toml")
DEFAULT_STATE_DIR: Final = Path("/var/lib/beacon-agent")
TOKEN_FILE: Final = "token"
SERVER_URL_FILE: Final = "server_url"  # written by `beacon-agent enroll`, beside the token


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEACON_AGENT_", extra="ignore")

    server_url: str = "http://127.0.0.1:8000"
    state_dir: Path = DEFAULT_STATE_DIR
    adapter: str = "hci0"
    watchdog_seconds: float = Field(default=90, gt=0)
    outbox_max_events: int = Field(default=100_000, ge=100)

    @property
    def token_file(self) -> Path:
        return self.state_dir / TOKEN_FILE

    @property
    def server_url_file(self) -> Path:
        return self.state_dir / SERVER_URL_FILE

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
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
        enrolled = EnrolledServerSource(settings_cls, (init_settings, env_settings, toml))
        return init_settings, env_settings, enrolled, toml


class EnrolledServerSource(PydanticBaseSettingsSource):
    """`server_url` as `beacon-agent enroll` saved it in the state directory (wherever the others put it)."""

    def __init__(
        self, settings_cls: type[BaseSettings], sources: tuple[PydanticBaseSettingsSource, ...]
    ) -> None:
        super().__init__(settings_cls)
        self._sources = sources  # highest priority first, as they decide `state_dir`

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the one file; nothing is looked up field by field

    def __call__(self) -> dict[str, Any]:
        state_dir = next(
            (
                values["state_dir"]
                for values in (source() for source in self._sources)
                if "state_dir" in values
            ),
            DEFAULT_STATE_DIR,
        )
        try:
            saved = (Path(state_dir) / SERVER_URL_FILE).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return {}  # not enrolled yet, enrolled by an older agent, or not ours to read: the others decide
        return {"server_url": saved} if saved else {}
