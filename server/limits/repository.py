"""Queries of the database's rate limit buckets (the take itself is one prebuilt statement, buckets.py)."""

from __future__ import annotations

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from server.limits.models import RateLimitBucket


def delete_full(session: Session, now: float, limit: int) -> int:
    """Delete up to `limit` buckets full again by `now` (Unix seconds); how many went."""
    full = (
        select(RateLimitBucket.name, RateLimitBucket.key)
        .where(RateLimitBucket.expires_at <= now)
        .limit(limit)
    )
    pair = tuple_(RateLimitBucket.name, RateLimitBucket.key)
    result = session.execute(delete(RateLimitBucket).where(pair.in_(full)))
    return int(getattr(result, "rowcount", 0) or 0)
