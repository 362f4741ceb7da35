"""What the alert job remembers: which conditions hold (so each alerts once), and the mails it has to send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class AlertState(Base):
    """A condition that holds for a subject (a gateway, a site beacon, a campaign). The row exists while the
    condition holds; `raised_at` is set once the alert went out, so it goes out once, and the row is deleted
    when the condition clears, so that it alerts again when it recurs."""

    __tablename__ = "alert_states"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id", "condition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    subject_kind: Mapped[str] = mapped_column(String(16))  # gateway | beacon | campaign
    subject_id: Mapped[int] = mapped_column()
    condition: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column()  # when it began, or when the job first saw it hold
    raised_at: Mapped[datetime | None] = mapped_column()


class AlertMail(Base):
    """An alert e-mail to send: written in the transaction that raised the alert, sent after it commits."""

    __tablename__ = "alert_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    condition: Mapped[str] = mapped_column(String(32))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # None once sent or given up; a sender holds a claimed mail until `claimed_until`.
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(200))
