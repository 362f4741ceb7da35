"""ETags on admin answers and If-Match on updates (the request's side of server/core/versions.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from server.core.versions import etag


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


IfMatch = Annotated[
    str | None,
    Header(description="The ETag from the last read; a stale one gets 412, none gets 428."),
]
