"""The live path's statement helpers on SQLite and PostgreSQL: list parameters (`in_list`), bulk rows as one
JSON document (`bulk`), and statements run straight through psycopg, alone or pipelined (`direct`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core import bulk, direct
from server.core.listparam import in_list

metadata = MetaData()
things = Table(
    "test_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(4), nullable=False, unique=True),
    Column("seen_at", DateTime(timezone=True)),
    Column("count", Integer, nullable=False, default=0),
)
_BY_KEY = select(things.c.id, things.c.key).where(in_list(things.c.key, "keys")).order_by(things.c.id)


@pytest.fixture
def table(engine: Engine) -> Table:
    metadata.create_all(engine)  # in the test's own database, dropped with it
    return things


def test_a_list_parameter_finds_each_value_and_no_longer_one_by_its_prefix(session: Session, table: Table):
    connection = session.connection()
    bulk.insert_rows(
        connection,
        table,
        [{"id": n, "key": key, "seen_at": None, "count": 0} for n, key in enumerate(["abcd", "efgh"], 1)],
    )

    def keys(values: list[str]) -> list[str]:
        return [row[1] for row in direct.rows(connection, _BY_KEY, {"keys": values})]

    assert keys(["abcd", "efgh", "zzzz"]) == ["abcd", "efgh"]
    assert keys([]) == []
    # An array of VARCHAR(4) would have cut this to "abcd" and found it.
    assert keys(["abcdef"]) == []


def test_bulk_rows_keep_their_values_and_refuse_rows_of_other_columns(session: Session, table: Table):
    connection = session.connection()
    at = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
    rows = [
        {"id": 1, "key": "a", "seen_at": at, "count": 2},
        {"id": 2, "key": "b", "seen_at": None, "count": 0},
    ]
    bulk.insert_rows(connection, table, rows)
    assert bulk.update_rows(connection, table, "id", [{"id": 2, "count": 5}]) == 1
    found = connection.execute(select(things.c.key, things.c.seen_at, things.c.count).order_by(things.c.id))
    assert [(key, seen.astimezone(UTC) if seen else None, count) for key, seen, count in found] == [
        ("a", at, 2),
        ("b", None, 5),
    ]
    with pytest.raises(ValueError, match="other columns"):
        bulk.rows_json([{"id": 3, "key": "c"}, {"id": 4}])


def test_a_statement_whose_columns_have_python_defaults_must_be_given_them():
    """SQLAlchemy's own execution computes a missing column's Python default; run directly it would be NULL,
    so such a statement is refused instead."""
    statement, _ = bulk.insert_query(things, [{"id": 1, "key": "a", "seen_at": None}])  # no "count"
    with pytest.raises(ValueError, match="Python defaults"):
        direct._compile(statement, postgresql.psycopg.dialect())


def test_a_failing_pipeline_raises_wrapped_and_leaves_the_session_usable(session: Session, table: Table):
    row = {"id": 1, "key": "a", "seen_at": None, "count": 0}
    bulk.insert_rows(session.connection(), table, [row])
    session.commit()
    again = things.insert().values({**row, "id": 2})  # the same key
    with pytest.raises(IntegrityError):
        direct.pipelined(session.connection(), [(_BY_KEY, {"keys": ["a"]}), (again, {})])
    session.rollback()
    [found] = direct.pipelined(session.connection(), [(_BY_KEY, {"keys": ["a"]})])
    assert [tuple(row) for row in found] == [(1, "a")]
