"""Inserting and updating many rows in one statement whose text does not depend on the number of rows.

SQLAlchemy renders a multi-row INSERT as one VALUES list with a placeholder per value, so its text grows with
the rows; psycopg parses every such text afresh (it caches only short statements), which costs about 55 µs a
row for a dozen columns, more than the insert itself. On PostgreSQL the rows go instead as one JSON document
into `INSERT ... SELECT ... FROM jsonb_to_recordset(...) AS bulk(a type, ...)`, a constant text that psycopg
parses once and PostgreSQL prepares; the statement is built once per shape. One JSON parameter, encoded by
the json module in C, replaced one array per column: psycopg dumps arrays element by element in Python, a
fifth of the live path's interpreter time. SQLite, whose driver parses in C, keeps executemany.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    CursorResult,
    Executable,
    Insert,
    Table,
    Text,
    bindparam,
    cast,
    column,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement, TextClause

from server.core import direct
from server.core.direct import Query

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
    update: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (every dict with the same keys); with `conflict`, rows that collide on that unique index
    are skipped (ON CONFLICT DO NOTHING), or, with `update`, set those columns of the row they collide with
    (ON CONFLICT DO UPDATE). Returns the `returning` columns of the inserted rows, in no particular order."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        query = insert_query(
            table, rows, returning=returning, conflict=conflict, conflict_where=conflict_where, update=update
        )
        found = direct.rows(connection, *query)
        return [tuple(row) for row in found] if returning else []
    names = tuple(rows[0])
    returned = tuple(c.key for c in returning)
    key = (
        "insert",
        False,
        table.name,
        names,
        tuple(conflict or ()),
        str(conflict_where),
        returned,
        tuple(update),
    )

    def build() -> Executable:
        if conflict is not None:
            lite = sqlite.insert(table)
            if update:
                lite = lite.on_conflict_do_update(
                    index_elements=list(conflict),
                    index_where=conflict_where,
                    set_={name: lite.excluded[name] for name in update},
                )
            else:
                lite = lite.on_conflict_do_nothing(index_elements=list(conflict), index_where=conflict_where)
            return lite.returning(*returning) if returning else lite
        plain = insert(table)
        return plain.returning(*returning) if returning else plain

    result = _execute(connection, _cached(key, build), rows)
    return [tuple(row) for row in result] if returning else []


def insert_query(
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[Column[Any]] = (),
    conflict: Sequence[str] | None = None,
    conflict_where: ColumnElement[bool] | TextClause | None = None,
    existing: tuple[str, Column[Any]] | None = None,
    update: Sequence[str] = (),
) -> Query:
    """PostgreSQL: `insert_rows` as a query to run with others in one round trip (`direct.pipelined`).
    `existing` (name, column): only the rows whose `name` value is stored in `column` go in, as seen by this
    statement (it sees what earlier statements of the transaction wrote): a row whose parent an earlier
    statement of the pipeline skipped is skipped too."""
    names = tuple(rows[0])
    returned = tuple(c.key for c in returning)
    guard = (existing[0], str(existing[1])) if existing is not None else None
    key = (
        "insert",
        True,
        table.name,
        names,
        tuple(conflict or ()),
        str(conflict_where),
        returned,
        guard,
        tuple(update),
    )

    def build() -> Executable:
        given = _recordset(table, names)
        chosen = select(*given.c)
        if existing is not None:
            name, parent = existing
            # OFFSET 0 keeps the test a subplan, one index probe a row: as a semi-join PostgreSQL would take
            # the recordset for 100 rows (its guess for any set-returning function) and scan all of `parent`.
            found = select(parent).where(parent == given.c[name]).offset(0)
            chosen = chosen.where(exists(found))
        pg = postgresql.insert(table).from_select(list(names), chosen)
        if conflict is not None and update:
            pg = pg.on_conflict_do_update(
                index_elements=list(conflict),
                index_where=conflict_where,
                set_={name: pg.excluded[name] for name in update},
            )
        elif conflict is not None:
            pg = pg.on_conflict_do_nothing(index_elements=list(conflict), index_where=conflict_where)
        return pg.returning(*returning) if returning else pg

    return _cached(key, build), {"bulk_rows": rows_json(rows)}


def new_ids_query(tables: Sequence[Table], count: int) -> Query:
    """PostgreSQL: `count` fresh ids from each table's id sequence, in one statement; row k holds the k-th id
    of each table, in the tables' order. Ids drawn and left unused are a gap in the sequence, nothing more."""
    key = ("ids", tuple(t.name for t in tables))

    def build() -> Executable:
        return select(
            *(func.nextval(func.pg_get_serial_sequence(t.name, "id")).label(t.name) for t in tables)
        ).select_from(func.generate_series(1, bindparam("n")))

    return _cached(key, build), {"n": count}


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
    jsonb_to_recordset(...)`, on SQLite an executemany. Returns the number of rows updated."""
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        return direct.count(connection, *update_query(table, key, rows, match=match, where=where))
    names = tuple(rows[0])
    matched = (key, *match)

    def build() -> Executable:
        extra = [where] if where is not None else []
        return (
            update(table)
            .values({name: bindparam(f"bulk_{name}") for name in names if name not in matched})
            .where(*(table.c[m] == bindparam(f"bulk_{m}") for m in matched), *extra)
        )

    shape = ("update", False, table.name, matched, names, str(where))
    result = _execute(connection, _cached(shape, build), rows)
    return int(getattr(result, "rowcount", 0) or 0)


def update_query(
    table: Table,
    key: str,
    rows: Sequence[dict[str, Any]],
    *,
    match: Sequence[str] = (),
    where: ColumnElement[bool] | None = None,
) -> Query:
    """PostgreSQL: `update_rows` as a query to run with others in one round trip (`direct.pipelined`)."""
    names = tuple(rows[0])
    matched = (key, *match)

    def build() -> Executable:
        given = _recordset(table, names)
        return (
            update(table)
            .values({name: given.c[name] for name in names if name not in matched})
            .where(*(table.c[m] == given.c[m] for m in matched), *([where] if where is not None else []))
        )

    shape = ("update", True, table.name, matched, names, str(where))
    return _cached(shape, build), {"bulk_rows": rows_json(rows)}


def _cached(key: tuple[Any, ...], build: Callable[[], Executable]) -> Executable:
    """A statement built once per shape: building the recordset forms costs more than running them."""
    with _lock:
        statement = _built.get(key)
    if statement is None:
        statement = build()
        with _lock:
            _built[key] = statement
    return statement


def _recordset(table: Table, names: tuple[str, ...]) -> Any:
    """`jsonb_to_recordset(CAST(:bulk_rows AS JSONB)) AS bulk(a type, b type, ...)`: the rows as one JSON
    array of objects, typed by the table's columns."""
    rows = cast(bindparam("bulk_rows", type_=Text), postgresql.JSONB)
    return (
        func.jsonb_to_recordset(rows)
        .table_valued(*(column(name, table.c[name].type) for name in names))
        .render_derived(name="bulk", with_types=True)
    )


def _execute(
    connection: Connection, statement: Executable, rows: Sequence[dict[str, Any]]
) -> CursorResult[Any]:
    """SQLite: an executemany."""
    if isinstance(statement, Insert):  # executemany with the columns' own names
        return connection.execute(statement, list(rows))
    names = tuple(rows[0])
    return connection.execute(statement, [{f"bulk_{name}": row[name] for name in names} for row in rows])


def rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a JSON array of objects; NaN and infinities are refused, as PostgreSQL would. Every row
    must have the first one's keys: jsonb_to_recordset would make a missing one NULL without a word."""
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        raise ValueError(f"bulk rows with other columns than {sorted(keys)}")
    return json.dumps(rows, default=_json_value, allow_nan=False, separators=(",", ":"))


def _json_value(value: Any) -> str:
    """What JSON has no type for, in the text form PostgreSQL reads back into the column's type."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.isoformat()
    if isinstance(value, (date, uuid.UUID)):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a bulk row")
