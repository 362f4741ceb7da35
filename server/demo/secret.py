"""The demo's own secret key: random, made on its first run, kept 0600 beside its database, reused after.

With the development placeholder, every demo's landing tokens, pseudonyms and sealed identity keys would be
the same as every other's. The key belongs with the database whose identity keys it seals, so it is kept in
the database's directory (`var/` by default; ignored by git)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.core.config import Settings
from server.subscribers.models import Subscriber

SECRET_FILE: Final = "demo-secret-key"


class DemoSecretRefused(Exception):
    """The demo cannot use its own key with this database; the message says what to do."""


def secret_path(database_url: str) -> Path:
    """Beside a SQLite database file; `var/` for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).parent / SECRET_FILE
    return Path("var") / SECRET_FILE


def with_demo_secret(settings: Settings, sessions: sessionmaker[Session]) -> tuple[Settings, Path | None]:
    """The settings with the demo's own key in place of the placeholder, and where it is kept (None: the
    operator set NAHBAR_SECRET_KEY, which is used as it is)."""
    if not settings.has_placeholder_secret:
        return settings, None
    path = secret_path(settings.database_url)
    if not path.exists():
        with sessions() as session:
            sealed = session.scalar(select(func.count()).select_from(Subscriber)) or 0
        if sealed:
            database = make_url(settings.database_url).render_as_string(hide_password=True)
            raise DemoSecretRefused(
                f"the demo database ({database}) holds {sealed} phones whose keys were sealed with the "
                f"placeholder secret, and the demo now keeps a key of its own in {path}: remove the database "
                "(make clean) and run the demo again"
            )
    return settings.model_copy(update={"secret_key": SecretStr(_read_or_make(path))}), path


def _read_or_make(path: Path) -> str:
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        try:  # created readable by its owner alone, never briefly by others
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another demo made it a moment ago: use that one
            return _read_or_make(path)
        with os.fdopen(descriptor, "w") as file:
            file.write(secret + "\n")
        return secret
    if len(secret) < 32:
        raise DemoSecretRefused(
            f"{path} holds no usable key (under 32 characters); remove it to get a new one"
        )
    return secret
