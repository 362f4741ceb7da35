"""Programmatic Alembic: upgrade to head, and tell whether a database is at head (for /readyz and the
background work that waits for it)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to `revision` (head by default); safe to run again."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaWait:
    """Tells a failure caused by a schema behind the code (`nahbar migrate` not run yet) from any other.

    Background work that fails on such a database warns once and then retries quietly, instead of logging
    a traceback on every try; it says so when the schema is current again. One per component, used from
    one thread."""

    def __init__(self, sessions: sessionmaker[Session], log: logging.Logger, what: str) -> None:
        self._sessions = sessions
        self._log = log
        self._what = what
        self._head: str | None = None
        self.waiting = False

    def explains_failure(self) -> bool:
        """Called after a failure: True when the schema is behind (the caller stays quiet), else False."""
        try:
            with self._sessions() as session:
                current = MigrationContext.configure(session.connection()).get_current_revision()
        except SQLAlchemyError:
            return False  # the database itself does not answer: the failure's own error says more
        self._head = self._head or head_revision()
        if current == self._head:
            return False
        if not self.waiting:
            self.waiting = True
            self._log.warning(
                "%s waits for the database schema (at %s, the code needs %s): run 'nahbar migrate'",
                self._what,
                current or "none, an empty database",
                self._head,
            )
        else:
            self._log.debug("%s still waits for the database schema", self._what)
        return True

    def succeeded(self) -> None:
        """Called after a success: ends a wait, saying so once."""
        if self.waiting:
            self.waiting = False
            self._log.info("%s resumed: the database schema is current", self._what)
