"""What gateways report: proximity events (idempotent), the visits they add up to, and daily aggregates."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, GrowingId, utcnow

# The predicate of the phone rows' unique index; a literal, so that ON CONFLICT can infer the index.
PHONE_ROWS = "source = 'phone'"


class Visit(Base):
    """One walk past one site by one person, merged across EID rotations and the site's gateways."""

    __tablename__ = "visits"
    # A sighting's visit is found by person, site and recency (the live path, every batch); erasure finds a
    # person's visits by the same prefix. Without it the lookup scans every visit of the last minutes.
    __table_args__ = (
        Index("ix_visits_subscriber_id_site_id_last_seen_at", "subscriber_id", "site_id", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    dwell_s: Mapped[float] = mapped_column(default=0.0)
    min_distance_m: Mapped[float | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()


class ProximityEvent(Base):
    """An enter/dwell/exit report. Only events that resolved to a subscriber are ever stored.

    A gateway's event is idempotent per (gateway, key); a phone's own sighting (the iOS path) has no gateway
    and is idempotent per (subscriber, key), through a partial unique index over the phone rows.
    """

    __tablename__ = "proximity_events"
    __table_args__ = (
        UniqueConstraint("gateway_id", "idempotency_key"),
        Index(
            "uq_proximity_events_phone_subscriber_id_idempotency_key",
            "subscriber_id",
            "idempotency_key",
            unique=True,
            sqlite_where=text(PHONE_ROWS),
            postgresql_where=text(PHONE_ROWS),
        ),
        CheckConstraint(
            "(source = 'gateway' AND gateway_id IS NOT NULL) OR (source = 'phone' AND gateway_id IS NULL)",
            name="source_matches_gateway",
        ),
    )

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    # No foreign key, for the reason PromptDecision.visit_id gives; the retention purge unlinks it.
    visit_id: Mapped[int | None] = mapped_column(GrowingId, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    observed_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    rssi: Mapped[float | None] = mapped_column()
    distance_m: Mapped[float | None] = mapped_column()
    dwell_s: Mapped[float] = mapped_column(default=0.0)
    source: Mapped[str] = mapped_column(String(8), default="gateway")  # gateway | phone (iOS path)


class DailyAggregate(Base):
    """Counts that outlive the raw events' retention; they hold no personal data."""

    __tablename__ = "daily_aggregates"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    events: Mapped[int] = mapped_column(default=0)
    visits: Mapped[int] = mapped_column(default=0)
    prompts: Mapped[int] = mapped_column(default=0)
    suppressed: Mapped[int] = mapped_column(default=0)
