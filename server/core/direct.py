"""Running the live path's prebuilt statements on PostgreSQL straight through psycopg.

SQLAlchemy's execution of a cached statement still costs about 70 µs of Python (execution context, parameter
processing, result set-up), more than psycopg's own work; the live path runs a dozen statements per batch.
Here a statement is compiled once per dialect into its SQL text, its fixed parameters and the type processors
of its parameters and result columns, and then run on the session's own connection, in its transaction, with
the same conversions SQLAlchemy would apply. Other databases (SQLite) go through SQLAlchemy as usual.

Only statements whose text is fixed can run this way: list parameters are `in_list` arrays, not expanding IN.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from psycopg.pq import ExecStatus
from sqlalchemy import Connection, Executable, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any]
Query = tuple[Executable, Mapping[str, Any]]  # a statement and its parameters


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    fixed: dict[str, Any]  # parameters whose values are part of the statement (literals), processed
    binds: dict[str, Processor]  # the processors of the parameters given at execution, where there is one
    results: tuple[tuple[int, Processor], ...]  # (column position, processor) of result columns that have one


_compiled: dict[tuple[int, int], tuple[Executable, Dialect, _Compiled]] = {}
_lock = threading.Lock()


def rows(connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The statement's result rows (tuples on PostgreSQL, SQLAlchemy rows elsewhere; index them)."""
    if connection.dialect.name != "postgresql":
        result = connection.execute(statement, dict(params or {}))
        return list(result) if result.returns_rows else []
    compiled, cursor = _run(connection, statement, params)
    return _rows(compiled, cursor)


def pipelined(connection: Connection, queries: Sequence[Query]) -> list[list[Any]]:
    """Run the statements one after the other and answer each one's rows, on PostgreSQL in one round trip
    (psycopg's pipeline mode: all are sent, then all answers read; the server still runs them in order, so
    a lock taken by one holds for those after it)."""
    if connection.dialect.name != "postgresql":
        return [rows(connection, statement, params) for statement, params in queries]
    if not queries:
        return []
    driver = connection.connection.driver_connection
    assert driver is not None
    # Compiled first: a statement that cannot be compiled fails before any of them is sent.
    compiled_queries = [(_compile(statement, connection.dialect), params) for statement, params in queries]
    ready = [(compiled, _values(compiled, params)) for compiled, params in compiled_queries]
    sent = []
    try:
        with driver.pipeline():
            for compiled, values in ready:
                cursor = driver.cursor()
                cursor.execute(compiled.sql, values)
                sent.append((compiled, cursor))
    except BaseException as error:
        # Which statement failed is in the error itself; the texts are the pipeline's, the values left out.
        texts = ";\n".join(compiled.sql for compiled, _ in ready)
        connection._handle_dbapi_exception(error, texts, None, None, None)
    return [_rows(compiled, cursor) for compiled, cursor in sent]


def _rows(compiled: _Compiled, cursor: Any) -> list[Any]:
    # Not `cursor.description`: psycopg builds a column object per column on every read of it.
    if cursor.pgresult is None or cursor.pgresult.status != ExecStatus.TUPLES_OK:
        return []
    found: list[Any] = cursor.fetchall()
    if not compiled.results:
        return found
    converted = []
    for row in found:
        values = list(row)
        for position, process in compiled.results:
            values[position] = process(values[position])
        converted.append(tuple(values))
    return converted


def count(connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    if connection.dialect.name != "postgresql":
        return int(getattr(connection.execute(statement, dict(params or {})), "rowcount", 0) or 0)
    _, cursor = _run(connection, statement, params)
    return max(int(cursor.rowcount), 0)


def _run(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None
) -> tuple[_Compiled, Any]:
    compiled = _compile(statement, connection.dialect)
    values = _values(compiled, params)
    # The connection's own DBAPI connection: the same transaction SQLAlchemy began for the session.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.sql, values)
    except BaseException as error:
        # As SQLAlchemy's own execution does: wrapped (IntegrityError, OperationalError, ...), and a
        # connection that was lost is invalidated so that the pool does not hand it out again.
        connection._handle_dbapi_exception(error, compiled.sql, values, cursor, None)
    return compiled, cursor


def _values(compiled: _Compiled, params: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(compiled.fixed)
    for name, value in (params or {}).items():
        process = compiled.binds.get(name)
        values[name] = value if process is None or value is None else process(value)
    return values


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    key = (id(statement), id(dialect))
    with _lock:
        found = _compiled.get(key)
    if found is not None and found[0] is statement and found[1] is dialect:
        return found[2]
    compiler = cast(ClauseElement, statement).compile(dialect=dialect)
    assert isinstance(compiler, SQLCompiler)
    if "POSTCOMPILE" in compiler.string:
        raise ValueError("an expanding IN cannot run directly: use in_list, or comparisons for literals")
    if compiler.insert_prefetch or compiler.update_prefetch:
        # SQLAlchemy's execution would compute these columns' Python defaults; here they would be NULL.
        missing = [column.key for column in [*compiler.insert_prefetch, *compiler.update_prefetch]]
        raise ValueError(f"give these columns' values, they have Python defaults: {missing}")
    processors = cast(Mapping[str, Processor], compiler._bind_processors)
    fixed: dict[str, Any] = {}
    binds: dict[str, Processor] = {}
    for bind, name in compiler.bind_names.items():
        process = processors.get(name)
        if bind.required or bind.callable is not None:
            if process is not None:
                binds[name] = process
            continue
        value = bind.effective_value
        fixed[name] = process(value) if process is not None and value is not None else value
    results = []
    for position, type_ in enumerate(_result_types(compiler)):
        # Our own types' conversions (UTC datetimes); psycopg's loaders already give what the dialect's
        # built-in types would (numbers, UUIDs, JSON), which is why SQLAlchemy leaves those to psycopg too.
        if not isinstance(type_, TypeDecorator):
            continue
        process = type_._cached_result_processor(dialect, None)
        if process is not None:
            results.append((position, process))
    done = _Compiled(str(compiler), fixed, binds, tuple(results))
    with _lock:
        _compiled[key] = (statement, dialect, done)
    return done


def _result_types(compiler: SQLCompiler) -> Sequence[Any]:
    return [entry[3] for entry in compiler._result_columns]
