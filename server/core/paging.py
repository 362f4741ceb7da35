"""Lists: limit/offset pages over a whitelisted sort, and the page envelope (repositories use these)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.core.errors import RuleViolation


class PageParams(BaseModel):
    limit: int
    offset: int
    sort: str | None


T = TypeVar("T")
M = TypeVar("M")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(
    session: Session, query: Select[M], params: PageParams, sortable: dict[str, Any], default: Any
) -> tuple[list[M], int]:
    """Run `query` sorted by a whitelisted column (then id, for a stable order) and count its rows."""
    order = default
    if params.sort:
        name = params.sort.removeprefix("-")
        column = sortable.get(name)
        if column is None:
            allowed = ", ".join(sorted(sortable))
            raise RuleViolation(
                f"Cannot sort by {name!r}; choose one of: {allowed}.", extra={"field": "sort"}
            )
        order = column.desc() if params.sort.startswith("-") else column.asc()
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.order_by(order).limit(params.limit).offset(params.offset)).all()
    return list(rows), total
