"""The query parameters of a list: ?limit, ?offset, ?sort."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from server.core import const
from server.core.paging import Page, PageParams

__all__ = ["Page", "PageDep", "PageParams", "page_params"]


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
