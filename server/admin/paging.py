"""Lists in the admin API: limit/offset pages, a whitelisted sort and the page envelope."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.admin.errors import RuleViolation
from server.core import const


class PageParams(BaseModel):
    limit: int
    offset: int
    sort: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=const.ADMIN_PAGE_MAX, description="Items per page")] = (
        const.ADMIN_PAGE_DEFAULT
    ),
    offset: Annotated[int, Query(ge=0, description="Items to skip")] = 0,
    sort: Annotated[
        str | None, Query(max_length=40, description="A field name; prefix '-' for descending, e.g. -id")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, offset=offset, sort=sort)


PageDep = Annotated[PageParams, Depends(page_params)]


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
