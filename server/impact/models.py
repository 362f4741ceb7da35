"""Impact counts: a ledger written with each fact, folded into daily counts that outlive raw rows.

Nothing here names a person. The ledger and the daily counts are keyed by site, site-local day, campaign,
variant, metric and detail; the only link to a raw row is `visit_ref` on a decision's ledger entry (a visit's
id, no foreign key), which the fold needs to count a visit once and which is gone a minute later.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, GrowingId, utcnow


class ImpactTally(Base):
    """One counted fact (or a few of one kind), appended in the transaction that recorded it; folded into
    ImpactDaily and deleted by the fold job. Appending never waits on another transaction's row."""

    __tablename__ = "impact_tallies"

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)  # the site's local day
    campaign_id: Mapped[int] = mapped_column(default=0)  # 0: none (no foreign key: counts outlive campaigns)
    variant_id: Mapped[int] = mapped_column(default=0)
    metric: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(32), default="")
    n: Mapped[int] = mapped_column(default=1)
    visit_ref: Mapped[int | None] = mapped_column(GrowingId)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImpactDaily(Base):
    """Counts per site, local day, campaign, variant, metric and detail; they survive purge and erasure."""

    __tablename__ = "impact_daily"
    __table_args__ = (UniqueConstraint("site_id", "day", "campaign_id", "variant_id", "metric", "detail"),)

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    campaign_id: Mapped[int] = mapped_column(default=0)
    variant_id: Mapped[int] = mapped_column(default=0)
    metric: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(32), default="")
    n: Mapped[int] = mapped_column(default=0)


class ImpactVisitMark(Base):
    """A visit counted under a reason that does not settle it (dwell_too_short): where it was counted, so a
    later prompt or final suppression of the same visit moves the count instead of adding one."""

    __tablename__ = "impact_visit_marks"

    visit_ref: Mapped[int] = mapped_column(GrowingId, primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column()
    day: Mapped[date] = mapped_column(Date)
    campaign_id: Mapped[int] = mapped_column(default=0)
    variant_id: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str] = mapped_column(String(32))
    marked_at: Mapped[datetime] = mapped_column(index=True)


class ImpactFoldState(Base):
    """One row, locked by the fold so that two workers never fold at once; it says when the last fold ran."""

    __tablename__ = "impact_fold_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    folded_at: Mapped[datetime | None] = mapped_column()


class PromptReference(Base):
    """The opaque reference a call to action carries to the charity's page, which posts it back to confirm
    that the person completed the sign-up or donation. Erasure takes it with the decision."""

    __tablename__ = "impact_prompt_references"

    id: Mapped[int] = mapped_column(GrowingId, primary_key=True)
    decision_id: Mapped[int] = mapped_column(
        GrowingId, ForeignKey("prompt_decisions.id", ondelete="CASCADE"), unique=True
    )
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    ref_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column()


class ConfirmationSecret(Base):
    """A charity's secret for signing confirmations (Standard Webhooks, towards us); sealed at rest. After a
    rotation the previous one stays valid until `previous_until`."""

    __tablename__ = "impact_confirmation_secrets"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OpenDataSettings(Base):
    """What a charity's open-data export says about itself: its licence and title."""

    __tablename__ = "impact_open_data"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    licence: Mapped[str] = mapped_column(String(200), default="CC-BY-4.0")
    title: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
