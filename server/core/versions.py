"""Optimistic concurrency for admin updates, the services' side: ETags from `version` columns, If-Match,
compare-and-set.

The rule: every PATCH or DELETE of an object that has an ETag (organisations, memberships, sites, campaigns,
the platform settings) needs If-Match; none gets 428, a stale one 412. Campaign status changes take it when
sent (pausing must work in a hurry). Beacons, invites and API tokens carry no version: they are only created,
revoked or deleted, which two admins cannot overwrite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from server.core.errors import PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int:
    """The version the client last saw, from If-Match ("*" is refused: it would overwrite blindly)."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag you last read, so edits are not lost.")
    tag = if_match.strip().removeprefix("W/")
    if not (tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isdigit()):
        raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag of this API; read the object again.")
    return int(tag[2:-1])


def claim_version(session: Session, row: Any, if_match: str | None) -> None:
    """Move `row` to its next version only if it is still at the version the client saw (one UPDATE).

    The conditional UPDATE is the race-free part: of two writers holding the same ETag, exactly one wins.
    """
    expected = expected_version(if_match)
    model = type(row)
    result = session.execute(
        update(model)
        .where(model.id == row.id, model.version == expected)
        .values(version=expected + 1)
        .execution_options(synchronize_session=False)
    )
    if not (isinstance(result, CursorResult) and result.rowcount == 1):
        raise PreconditionFailed(
            "Someone changed this since you read it; read it again, reapply your change and retry.",
            extra={"current_etag": etag(row.version)},
        )
    row.version = expected + 1
