"""Alembic environment: runs against the connection handed in by server.core.migrate, or the URL."""

from __future__ import annotations

from alembic import context

import server.models  # noqa: F401 - registers every table on Base.metadata
from server.core.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _run_with(conn)
        engine.dispose()
    else:
        _run_with(connection)


def _run_with(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
