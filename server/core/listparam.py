"""`column IN <a list given at execution>` whose statement text does not change with the list's length.

An expanding IN (`bindparam(..., expanding=True)`) is rendered anew for every length, one placeholder per
value: psycopg parses each new text afresh (its cache keeps only short statements) and PostgreSQL can never
prepare it, so a batch's reads were planned on every batch. On PostgreSQL `in_list` renders
`column = ANY(:name)` with the list as one array parameter instead: one text, parsed once by psycopg and
prepared by PostgreSQL after a few runs. Other databases (SQLite) keep the expanding IN.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class InList(ColumnElement[bool]):
    """True where `column` is one of the values of the list parameter `name` (a list or tuple)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a comparison already: no "= 1" where booleans are integers
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


def in_list(column: Any, name: str) -> InList:
    return InList(column, name)


@compiles(InList)
def _expanding(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(InList, "postgresql")
def _array(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    item = element.column.type
    if isinstance(item, String) and item.length is not None:
        # An array of VARCHAR(n) would cut longer values to n characters, without an error: a key of 70
        # characters would then match one of its first 64.
        item = String()
    values = bindparam(element.name, type_=ARRAY(item))
    return compiler.process(element.column == any_(values), **kw)
