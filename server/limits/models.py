"""Token buckets kept in the database, so that every worker counts against the same limit."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base


class RateLimitBucket(Base):
    """One limit's bucket for one caller. The caller is a keyed hash of the client address or device id, never
    the address or id itself; a row idle for a whole period says nothing and is deleted by a job."""

    __tablename__ = "rate_limit_buckets"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # optin, sightings, pairing
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)  # Unix seconds when `tokens` was computed
    # Unix seconds after which the bucket is full again: no index, so that the hot upsert stays a HOT update.
    expires_at: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool] = mapped_column()  # whether the last take got a token
