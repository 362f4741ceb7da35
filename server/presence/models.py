"""What gateways report: proximity events (idempotent), the visits they add up to, and daily aggregates."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class Visit(Base):
    """One walk past one site by one person, merged across EID rotations and the site's gateways."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    dwell_s: Mapped[float] = mapped_column(default=0.0)
    min_distance_m: Mapped[float | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()


class ProximityEvent(Base):
    """An enter/dwell/exit report. Only events that resolved to a subscriber are ever stored."""

    __tablename__ = "proximity_events"
    __table_args__ = (UniqueConstraint("gateway_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"), index=True)
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
