"""Inserting many rows in one statement whose text does not depend on the number of rows.

SQLAlchemy renders a multi-row INSERT as one VALUES list with a placeholder per value, so its text grows with
the rows; psycopg parses every such text afresh (it caches only short statements), which costs about 55 µs a
row for a dozen columns, more than the insert itself. On PostgreSQL the rows go instead as one array per
column into `INSERT ... SELECT ... FROM unnest(...)`, a constant text that psycopg parses once and PostgreSQL
prepares; the statement is built once per shape. SQLite, whose driver parses in C, keeps executemany.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    CursorResult,
    Executable,
    Insert,
    Table,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement, TextClause

_built: dict[tuple[Any, ...], Executable] = {}
_lock = threading.Lock()


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[Column[Any]] = (),
    conflict: Sequence[str] | None = None,
    conflict_where: ColumnElement[bool] | TextClause | None = None,
) -> list[tuple[Any, ...]]:
    """Insert `rows` (every dict with the same keys); with `conflict`, rows that collide on that unique index
    are skipped (ON CONFLICT DO NOTHING). Returns the `returning` columns of the inserted rows, in no
    particular order."""
    if not rows:
        return []
    names = tuple(rows[0])
    postgres = connection.dialect.name == "postgresql"
    returned = tuple(c.key for c in returning)
    key = ("insert", postgres, table.name, names, tuple(conflict or ()), str(conflict_where), returned)

    def build() -> Executable:
        if postgres:
            pg = postgresql.insert(table).from_select(list(names), select(*_unnest(table, names).c))
            if conflict is not None:
                pg = pg.on_conflict_do_nothing(index_elements=list(conflict), index_where=conflict_where)
            return pg.returning(*returning) if returning else pg
        if conflict is not None:
            lite = sqlite.insert(table).on_conflict_do_nothing(
                index_elements=list(conflict), index_where=conflict_where
            )
            return lite.returning(*returning) if returning else lite
        plain = insert(table)
        return plain.returning(*returning) if returning else plain

    result = _execute(connection, _cached(key, build), table, rows, postgres=postgres)
    return [tuple(row) for row in result] if returning else []


def update_rows(
    connection: Connection,
    table: Table,
    key: str,
    rows: Sequence[dict[str, Any]],
    *,
    match: Sequence[str] = (),
    where: ColumnElement[bool] | None = None,
) -> int:
    """Set each row's columns where `key` (and the `match` columns, which are not set) equal the row's (every
    dict with the same keys, these among them) and `where` holds: on PostgreSQL one `UPDATE ... FROM
    unnest(...)`, on SQLite an executemany. Returns the number of rows updated."""
    if not rows:
        return 0
    names = tuple(rows[0])
    postgres = connection.dialect.name == "postgresql"
    matched = (key, *match)

    def build() -> Executable:
        extra = [where] if where is not None else []
        if postgres:
            unnested = _unnest(table, names)
            return (
                update(table)
                .values({name: unnested.c[name] for name in names if name not in matched})
                .where(*(table.c[m] == unnested.c[m] for m in matched), *extra)
            )
        return (
            update(table)
            .values({name: bindparam(f"bulk_{name}") for name in names if name not in matched})
            .where(*(table.c[m] == bindparam(f"bulk_{m}") for m in matched), *extra)
        )

    shape = ("update", postgres, table.name, matched, names, str(where))
    result = _execute(connection, _cached(shape, build), table, rows, postgres=postgres)
    return int(getattr(result, "rowcount", 0) or 0)


def _cached(key: tuple[Any, ...], build: Callable[[], Executable]) -> Executable:
    """A statement built once per shape: building the unnest forms costs more than running them."""
    with _lock:
        statement = _built.get(key)
    if statement is None:
        statement = build()
        with _lock:
            _built[key] = statement
    return statement


def _unnest(table: Table, names: tuple[str, ...]) -> Any:
    """`unnest(:bulk_a, :bulk_b, ...) AS bulk(a, b, ...)`: one array parameter per column."""
    arrays = [bindparam(f"bulk_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in names]
    return (
        func.unnest(*arrays)
        .table_valued(*(column(name, table.c[name].type) for name in names))
        .render_derived(name="bulk")
    )


def _execute(
    connection: Connection,
    statement: Executable,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    postgres: bool,
) -> CursorResult[Any]:
    names = tuple(rows[0])
    if postgres:  # one array per column
        return connection.execute(statement, {f"bulk_{name}": _column(table, name, rows) for name in names})
    if isinstance(statement, Insert):  # executemany with the columns' own names
        return connection.execute(statement, list(rows))
    return connection.execute(statement, [{f"bulk_{name}": row[name] for name in names} for row in rows])


def _column(table: Table, name: str, rows: Sequence[dict[str, Any]]) -> list[Any]:
    """One column's values as an array psycopg can send: it refuses mixed types, such as 0 and 20.5."""
    values = [row[name] for row in rows]
    try:
        python_type = table.c[name].type.python_type
    except NotImplementedError:
        return values
    if python_type is float:
        return [None if value is None else float(value) for value in values]
    return values
