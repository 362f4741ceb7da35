"""Inserting many rows in one statement whose text does not depend on the number of rows.

SQLAlchemy renders a multi-row INSERT as one VALUES list with a placeholder per value, so its text grows with
the rows; psycopg parses every such text afresh (it caches only short statements), which costs about 55 µs a
row for a dozen columns, more than the insert itself. On PostgreSQL the rows go instead as one array per
column into `INSERT ... SELECT ... FROM unnest(...)`, a constant text that psycopg parses once and PostgreSQL
prepares; the statement is built once per shape. SQLite, whose driver parses in C, keeps executemany.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Executable, Table, bindparam, column, func, insert, select, update
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
    key = (
        postgres,
        table.name,
        names,
        tuple(conflict or ()),
        str(conflict_where),
        tuple(c.key for c in returning),
    )
    with _lock:
        statement = _built.get(key)
    if statement is None:
        statement = _build(table, names, returning, conflict, conflict_where, postgres=postgres)
        with _lock:
            _built[key] = statement
    if postgres:
        result = connection.execute(statement, {f"bulk_{name}": _column(table, name, rows) for name in names})
    else:
        result = connection.execute(statement, list(rows))
    return [tuple(row) for row in result] if returning else []


def _build(
    table: Table,
    names: tuple[str, ...],
    returning: Sequence[Column[Any]],
    conflict: Sequence[str] | None,
    conflict_where: ColumnElement[bool] | TextClause | None,
    *,
    postgres: bool,
) -> Executable:
    if postgres:
        arrays = [bindparam(f"bulk_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in names]
        unnested = (
            func.unnest(*arrays)
            .table_valued(*(column(name, table.c[name].type) for name in names))
            .render_derived(name="bulk")
        )
        pg = postgresql.insert(table).from_select(list(names), select(*unnested.c))
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


def update_rows(connection: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """Set each row's columns where `key` matches (every dict with the same keys, `key` among them): on
    PostgreSQL one `UPDATE ... FROM unnest(...)`, on SQLite an executemany."""
    if not rows:
        return
    names = tuple(rows[0])
    postgres = connection.dialect.name == "postgresql"
    cache_key = ("update", postgres, table.name, key, names)
    with _lock:
        statement = _built.get(cache_key)
    if statement is None:
        if postgres:
            arrays = [bindparam(f"bulk_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in names]
            unnested = (
                func.unnest(*arrays)
                .table_valued(*(column(name, table.c[name].type) for name in names))
                .render_derived(name="bulk")
            )
            statement = (
                update(table)
                .values({name: unnested.c[name] for name in names if name != key})
                .where(table.c[key] == unnested.c[key])
            )
        else:
            statement = (
                update(table)
                .values({name: bindparam(f"bulk_{name}") for name in names if name != key})
                .where(table.c[key] == bindparam(f"bulk_{key}"))
            )
        with _lock:
            _built[cache_key] = statement
    if postgres:
        connection.execute(statement, {f"bulk_{name}": _column(table, name, rows) for name in names})
    else:
        connection.execute(statement, [{f"bulk_{name}": row[name] for name in names} for row in rows])
