"""Prompt decisions (with reason codes), their deliveries and the person's responses."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, GrowingId, utcnow


class PromptDecision(Base):
    """Every decision, prompted or not. The (subscriber, local_day, day_slot) key makes the daily cap a
    database invariant: a prompt takes the next free slot, and a racing second prompt collides."""

    __tablename__ = "prompt_decisions"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "local_day", "day_slot"),
        # A campaign's prompts of a day (its daily budget, read by every batch): by campaign alone the read
        # went through every decision the campaign ever had.
        Index("ix_prompt_decisions_campaign_id_local_day", "campaign_id", "local_day"),
    )

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    # No index of its own: the unique key above starts with it (histories, erasure).
    subscriber_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # The visit and the event are rows of the decision's own batch, written in the same transaction. They
    # carry no foreign key: PostgreSQL's check of a row inserted by the same transaction cost about 55 µs,
    # two of them a quarter of a decision's time in the database. Their only deletion, the retention purge,
    # unlinks them itself (through these indexes); erasure deletes the person's decisions with them. Deleting
    # a gateway would cascade to its events and leave event_id dangling: nothing deletes gateways (they are
    # revoked), and whatever comes to must unlink first.
    visit_id: Mapped[int | None] = mapped_column(GrowingId, index=True)
    event_id: Mapped[int | None] = mapped_column(GrowingId, index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_variants.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(16))  # prompted | suppressed
    reason: Mapped[str] = mapped_column(String(32), index=True)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    local_day: Mapped[date | None] = mapped_column(Date)  # set for prompts only
    day_slot: Mapped[int | None] = mapped_column()  # 0-based; set for prompts only
    expires_at: Mapped[datetime | None] = mapped_column()
    landing_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("decision_id", "channel_kind", "channel_id"),)

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    # No index of its own: the unique key above starts with it.
    decision_id: Mapped[int] = mapped_column(GrowingId, ForeignKey("prompt_decisions.id", ondelete="CASCADE"))
    channel_kind: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("push_channels.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptResponse(Base):
    __tablename__ = "prompt_responses"

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    decision_id: Mapped[int] = mapped_column(
        GrowingId, ForeignKey("prompt_decisions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # opened | accepted | dismissed | not_here | not_this_org
    at: Mapped[datetime] = mapped_column(default=utcnow)
