"""What the policy keeps of a person's past: a compact history, one row per person, read by primary key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class PersonHistory(Base):
    """The prompts, dismissals and acceptances the caps need, kept beyond the raw decisions' retention.

    Written in the transaction that records a prompt or an answer, under the person's lock; read by the live
    path by primary key, so its cost depends neither on how long the platform has run nor on the batch. See
    `server.policy.history` for the form of the three JSON columns and what is kept."""

    __tablename__ = "person_history"

    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    # [[decided at (ISO), local day (ISO), charity, campaign], ...] oldest first: the last 30 days, and
    # each campaign's latest prompt however old.
    prompts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dismissed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # campaign -> latest dismissal
    accepted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # campaign -> first acceptance
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
